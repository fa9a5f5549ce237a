"""The fluxrm broker: one asyncio loop that routes messages between clients
and in-process services."""
