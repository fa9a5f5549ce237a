"""flux.asyncio: FluxEventLoop, awaitable Flux futures and job coroutines."""

import asyncio
import errno
import os
import signal
import subprocess
import sys

import pytest

import flux
import flux.asyncio
import flux.job
from flux.asyncio import FluxEventLoop, FluxEventLoopPolicy
from flux.job import JobspecV1

HANG = 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(*argv):
    return JobspecV1.from_command(list(argv))


def simulated(duration="0s"):
    js = JobspecV1.from_command(["true"])
    js.setattr("system.exec.test", {"run_duration": duration})
    return js


@pytest.fixture
def loop(h):
    lp = FluxEventLoop(h)
    asyncio.set_event_loop(lp)
    yield lp
    asyncio.set_event_loop(None)
    lp.close()


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, HANG))


# -- the seed ------------------------------------------------------------------------------------------
def test_seed_example_runs_unchanged(instance):
    # examples/asyncio_submit.py starts with the seed's code, verbatim
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "asyncio_submit.py")],
                          capture_output=True, text=True, timeout=HANG,
                          env=instance.env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[None, JobID(") and lines[0].count("JobID(") == 2
    assert lines[-1].endswith("exited with 0")


def test_import_outside_an_instance(tmp_path):
    code = (
        "import asyncio\n"
        "from flux.asyncio import loop\n"
        "import flux.job, flux.asyncio\n"
        "assert isinstance(loop, flux.asyncio.FluxEventLoop)\n"
        "js = flux.job.JobspecV1.from_command(['true'])\n"
        "try:\n"
        "    loop.run_until_complete(flux.asyncio.submit(js))\n"
        "except OSError as exc:\n"
        "    print('error:', exc)\n"
    )
    env = dict(os.environ, FLUX_URI=f"local://{tmp_path}/none")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=HANG, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "error: [Errno" in proc.stdout and "Unable to connect to Flux" in proc.stdout


def test_module_loop_and_handle(instance):
    lp = flux.asyncio.loop
    assert lp is flux.asyncio.loop
    assert isinstance(lp, FluxEventLoop)
    assert flux.asyncio.HANDLE is lp.handle is lp.selector.handle
    with pytest.raises(AttributeError):
        flux.asyncio.no_such_name


# -- the loop -------------------------------------------------------------------------------------------------
def test_submit_with_tasks_and_gather(loop, h):
    js = command("true")
    tasks = [
        loop.create_task(asyncio.sleep(0)),
        loop.create_task(flux.asyncio.submit(js)),
        loop.create_task(flux.asyncio.submit(js, flux_handle=h, waitable=True)),
    ]
    results = run(loop, asyncio.gather(*tasks))
    assert results[0] is None
    assert all(isinstance(j, flux.job.JobID) for j in results[1:])
    assert loop.handle is h and loop.selector.handle is h
    assert flux.job.wait(h, results[2]).success


def test_flux_futures_are_awaitable(loop, h):
    async def main():
        pong = await h.rpc("broker.ping", {"seq": 7})
        jobid = await flux.job.submit_async(h, command("true"), waitable=True)
        info = await flux.job.result_async(h, jobid)
        status = await flux.job.wait_async(h, jobid)
        with pytest.raises(OSError) as err:
            await h.rpc("no-such-service.method")
        return pong, jobid, info, status, err.value.errno

    pong, jobid, info, status, errnum = run(loop, main())
    assert pong["seq"] == 7
    assert isinstance(jobid, flux.job.JobID)
    assert info.returncode == 0 and info.id == jobid
    assert status.jobid == jobid and status.success
    assert errnum == errno.ENOSYS


def test_job_coroutines(loop, h):
    async def main():
        ok = await flux.asyncio.submit(command("sh", "-c", "exit 4"), waitable=True)
        info = await flux.asyncio.result(ok)
        status = await flux.asyncio.wait(ok)
        sleeper = await flux.asyncio.submit(command("sleep", "60"))
        start = await flux.asyncio.event_wait(sleeper, "start")
        await flux.asyncio.kill(sleeper, signal.SIGUSR1)
        killed = await flux.asyncio.result(sleeper)
        held = await flux.asyncio.submit(simulated(), urgency=0)
        await flux.asyncio.event_wait(held, "priority")
        await flux.asyncio.cancel(held, "no longer needed")
        with pytest.raises(flux.job.JobException) as exc:
            await flux.asyncio.event_wait(held, "start")
        with pytest.raises(OSError) as nodata:
            await flux.asyncio.event_wait(held, "start", raiseJobException=False)
        with pytest.raises(OSError):
            await flux.asyncio.cancel(123456789)
        return info, status, start, killed, exc.value, nodata.value

    info, status, start, killed, exc, nodata = run(loop, main())
    assert info.returncode == 4
    assert not status.success
    assert start.name == "start"
    assert killed.returncode == 128 + signal.SIGUSR1
    assert exc.type == "cancel" and exc.note == "no longer needed"
    assert nodata.errno == errno.ENODATA


def test_event_watch_async_iterator(loop, h):
    async def main():
        jobid = await flux.asyncio.submit(command("true"))
        names = [event.name async for event in flux.asyncio.event_watch(jobid)]
        output = [event.name async for event in
                  flux.asyncio.event_watch(jobid, "guest.output")]
        # leaving early cancels the watch
        async for event in flux.asyncio.event_watch(jobid):
            break
        return jobid, names, output, event

    jobid, names, output, first = run(loop, main())
    assert names == [e.name for e in flux.job.event_watch(h, jobid)]
    assert names[0] == "submit" and names[-1] == "clean"
    assert "header" in output
    assert first.name == "submit"


def test_many_jobs_concurrently(loop):
    async def one():
        jobid = await flux.asyncio.submit(simulated())
        return (await flux.asyncio.result(jobid)).returncode

    codes = run(loop, asyncio.gather(*(one() for _ in range(200))))
    assert codes == [0] * 200


def test_flux_callbacks_and_timers_run_in_the_loop(loop, h):
    async def main():
        fired = loop.create_future()
        timer = h.timer_watcher_create(0.01, lambda *a: fired.set_result("timer"))
        timer.start()
        got = await fired
        answered = loop.create_future()
        h.rpc("broker.ping", {"n": 1}).then(lambda f: answered.set_result(f.get()["n"]))
        return got, await answered

    assert run(loop, main()) == ("timer", 1)


def test_flux_callback_exception_goes_to_handler(loop, h):
    caught = []
    loop.set_exception_handler(lambda lp, ctx: caught.append(ctx["exception"]))

    def bad(f):
        raise ValueError("bad callback")

    async def main():
        h.rpc("broker.ping").then(bad)
        return await h.rpc("broker.ping", {"after": True})

    assert run(loop, main())["after"] is True
    assert len(caught) == 1 and isinstance(caught[0], ValueError)


def test_cancelling_the_awaiting_task(loop, h):
    async def main():
        jobid = await flux.asyncio.submit(simulated("1h"))
        task = asyncio.ensure_future(flux.asyncio.result(jobid))
        await flux.asyncio.event_wait(jobid, "start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await flux.asyncio.cancel(jobid)
        return await flux.asyncio.result(jobid)

    info = run(loop, main())
    assert info.result == "CANCELED"


def test_another_handle_on_the_loop(loop, instance):
    other = flux.Flux()

    async def main():
        jobid = await flux.asyncio.submit(command("true"), flux_handle=other)
        return await flux.asyncio.result(jobid, flux_handle=other)

    assert run(loop, main()).returncode == 0


def test_asyncio_run_with_policy(instance):
    async def main():
        jobid = await flux.asyncio.submit(command("true"))
        info = await flux.asyncio.result(jobid)
        return type(asyncio.get_running_loop()), info.returncode

    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(FluxEventLoopPolicy())
    try:
        assert asyncio.run(main()) == (FluxEventLoop, 0)
    finally:
        asyncio.set_event_loop_policy(saved)
    if sys.version_info >= (3, 12):
        assert asyncio.run(main(), loop_factory=FluxEventLoop) == (FluxEventLoop, 0)


def test_plain_asyncio_loop(instance):
    async def main():
        jobid = await flux.asyncio.submit(command("true"))
        pong = await flux.Flux().rpc("broker.ping", {"x": 1})
        return (await flux.asyncio.result(jobid)).returncode, pong["x"]

    assert asyncio.run(main()) == (0, 1)


def test_closing_the_loop_keeps_the_handle(h):
    lp = FluxEventLoop(h)
    assert lp.run_until_complete(h.rpc("broker.ping", {"a": 1}))["a"] == 1
    lp.close()
    assert h.rpc("broker.ping", {"a": 2}).get()["a"] == 2
    lp2 = FluxEventLoop(h)
    try:
        assert lp2.run_until_complete(h.rpc("broker.ping", {"a": 3}))["a"] == 3
    finally:
        lp2.close()
