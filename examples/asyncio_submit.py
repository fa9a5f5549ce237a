#!/usr/bin/env python3
"""The seed's asyncio example: submit two jobs beside an ``asyncio.sleep``.

Run inside an instance (``flux start python examples/asyncio_submit.py``).
The first part is the seed's code, unchanged; the second does the same
with ``async``/``await`` only: submit, follow the events, collect results.
"""

# ensure the script is running in an active flux instance
import asyncio
from flux.asyncio import loop
import flux.job

fluxsleep = flux.job.JobspecV1.from_command(['sleep', '2'])
fluxecho = flux.job.JobspecV1.from_command(['echo', 'pancakes'])

tasks = [
   loop.create_task(asyncio.sleep(5)),
   loop.create_task(flux.asyncio.submit(fluxecho)),
   loop.create_task(flux.asyncio.submit(fluxsleep)),
]

asyncio.set_event_loop(loop)
results = loop.run_until_complete(asyncio.gather(*tasks))
print(results)
# [None, JobID(456004999315456), JobID(456004999315457)]


# -- the same with async/await only --------------------------------------------------------
async def follow(jobspec):
    jobid = await flux.asyncio.submit(jobspec)
    async for event in flux.asyncio.event_watch(jobid):
        print(f"  {jobid}: {event.name}")
    info = await flux.asyncio.result(jobid)
    return jobid, info.returncode


async def main():
    done = await asyncio.gather(follow(fluxecho), follow(fluxecho))
    for jobid, returncode in done:
        print(f"{jobid} exited with {returncode}")


loop.run_until_complete(main())
