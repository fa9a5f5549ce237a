"""flux.job.validator and flux.job.frobnicator: loading plugins by name and
by path, their options, results, and the line protocol."""

import errno
import io
import json

import pytest

from flux.job import JobspecV1
from flux.job.frobnicator import JobFrobnicator
from flux.job.validator import JobValidator

GOOD = JobspecV1.from_command(["true"]).jobspec

PLUGIN = '''
import errno
from flux.job.validator import ValidatorPlugin

class Validator(ValidatorPlugin):
    def __init__(self, parser):
        super().__init__(parser)
        parser.add_argument("--max-ntasks", type=int, default=4)

    def configure(self, args):
        self.limit = args.max_ntasks

    def validate(self, args):
        ntasks = args.jobspec["resources"][0]["count"]
        if ntasks > self.limit:
            return errno.E2BIG, f"at most {self.limit} slots"
        if args.urgency == 31:
            return errno.EPERM
'''


@pytest.fixture(autouse=True)
def no_cli_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", str(tmp_path / "none"))


def test_default_jobspec_plugin():
    validator = JobValidator([])
    assert validator.validate({"jobspec": GOOD}).errnum == 0
    assert validator.validate({"jobspec": json.dumps(GOOD)}).errnum == 0
    result = validator.validate({"jobspec": {"version": 1}})
    assert result.errnum == errno.EINVAL and "resources" in result.errstr
    assert validator.validate({"userid": 1}).errnum == errno.EPROTO


def test_plugin_from_path_with_options(tmp_path):
    (tmp_path / "limit.py").write_text(PLUGIN)
    validator = JobValidator(["--plugins=jobspec,limit", "--max-ntasks=2"],
                             pluginpath=[str(tmp_path)])
    assert len(validator.plugins) == 2
    big = JobspecV1.from_command(["true"], num_tasks=3).jobspec
    result = validator.validate({"jobspec": big})
    assert (result.errnum, result.errstr) == (errno.E2BIG, "at most 2 slots")
    result = validator.validate({"jobspec": GOOD, "urgency": 31})
    assert result.errnum == errno.EPERM and result.errstr
    assert validator.validate({"jobspec": GOOD}).errnum == 0


def test_bad_plugin_names_and_options(tmp_path):
    with pytest.raises(ValueError, match="no such plugin 'nope'"):
        JobValidator(["--plugins=nope"])
    with pytest.raises(ValueError, match="no such file"):
        JobValidator([f"--plugins={tmp_path}/missing.py"])
    with pytest.raises(ValueError, match="unrecognized arguments"):
        JobValidator(["--max-ntasks=2"])
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no Validator class"):
        JobValidator(["--plugins=empty"], pluginpath=[str(tmp_path)])


def test_validator_line_protocol():
    lines = "\n".join([json.dumps({"id": 7, "jobspec": GOOD}),
                       json.dumps({"id": 8, "jobspec": {"version": 1}}),
                       "not json"]) + "\n"
    out = io.StringIO()
    JobValidator([]).run(io.StringIO(lines), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers[0] == {"id": 7, "errnum": 0}
    assert answers[1]["id"] == 8 and answers[1]["errnum"] == errno.EINVAL
    assert answers[2]["errnum"] == errno.EPROTO


CONFIG = {
    "policy": {"jobspec": {"defaults": {"system": {"duration": "1h", "queue": "batch"}}}},
    "queues": {"debug": {"policy": {"jobspec": {"defaults": {"system": {
        "duration": "5m"}}}}}},
}


def test_defaults_frobnicator():
    frob = JobFrobnicator([], config=CONFIG)
    result = frob.frob({"jobspec": {"attributes": {"system": {}}}})
    assert result == {"errnum": 0, "data": {"attributes": {"system": {
        "queue": "batch", "duration": 3600.0}}}}
    result = frob.frob({"jobspec": {"attributes": {"system": {"queue": "debug"}}}})
    assert result["data"]["attributes"]["system"]["duration"] == 300.0
    kept = frob.frob({"jobspec": {"attributes": {"system": {"duration": 60}}}})
    assert kept["data"]["attributes"]["system"] == {"duration": 60, "queue": "batch"}
    assert JobFrobnicator([]).frob({"jobspec": {}})["data"] == {
        "attributes": {"system": {}}}


def test_defaults_frobnicator_bad_duration():
    config = {"queues": {"q": {"policy": {"jobspec": {"defaults": {"system": {
        "duration": "forever"}}}}}}}
    with pytest.raises(ValueError, match="queues.q.jobspec.defaults.system.duration"):
        JobFrobnicator([], config=config)


def test_frobnicator_plugin_rejects_and_line_protocol(tmp_path):
    (tmp_path / "deny.py").write_text(
        "from flux.job.frobnicator import FrobnicatorPlugin\n"
        "class Frobnicator(FrobnicatorPlugin):\n"
        "    def frob(self, jobspec, userid, urgency, flags):\n"
        "        if urgency == 0:\n"
        "            raise ValueError('urgency 0 is not allowed here')\n"
        "        jobspec['frobbed'] = userid\n")
    frob = JobFrobnicator(["--plugins=deny"], pluginpath=[str(tmp_path)])
    lines = "\n".join([json.dumps({"id": 1, "jobspec": {}, "userid": 5}),
                       json.dumps({"id": 2, "jobspec": {}, "urgency": 0}),
                       "[]"]) + "\n"
    out = io.StringIO()
    frob.run(io.StringIO(lines), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers[0] == {"id": 1, "errnum": 0, "data": {"frobbed": 5}}
    assert answers[1] == {"id": 2, "errnum": errno.EINVAL,
                          "errstr": "urgency 0 is not allowed here"}
    assert answers[2]["errnum"] == errno.EPROTO
