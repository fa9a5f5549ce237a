"""RFC 36 directives: ``flux.job.directives`` (pure) and ``flux batch``
honouring ``#flux:`` lines (with --dry-run: no instance needed)."""

import json

import pytest

from flux.job.directives import DirectiveParser
from conftest import run_flux


def parse(text):
    return [(d.action, d.args, d.lineno) for d in DirectiveParser(text).directives]


def test_directives_are_split_like_a_shell():
    script = ("#!/bin/sh\n#flux: -n2 --job-name='my job'\n# a comment\n\n"
              "#flux:\n# flux: -q batch\nhostname\n")
    assert parse(script) == [("SETARGS", ["-n2", "--job-name=my job"], 2),
                             ("NOOP", [], 5), ("SETARGS", ["-q", "batch"], 6)]
    assert DirectiveParser(script).script == script


def test_triple_quotes_span_lines():
    script = ('#!/bin/sh\n#flux: --setattr=user.note="""\n#flux: one\n'
              '#flux:   two\n#flux: """ -n1\ntrue\n')
    assert parse(script) == [("SETARGS", ["--setattr=user.note=\none\ntwo\n", "-n1"], 2)]


def test_other_comment_styles_and_file_objects(tmp_path):
    path = tmp_path / "job.lua"
    path.write_text("-- flux: -N1\nprint(1)\n")
    with open(path) as fp:
        assert [(d.action, d.args) for d in DirectiveParser(fp).directives] == [
            ("SETARGS", ["-N1"])]
    assert parse("// flux: -n3\n") == [("SETARGS", ["-n3"], 1)]


@pytest.mark.parametrize("script,message", [
    ("#!/bin/sh\necho\n#flux: -n2\n", "line 3: orphan 'flux:' directive"),
    ('#flux: --setattr=x="""\n#flux: a\n', "line 1: unterminated triple quote"),
    ('#flux: --setattr=x="""\necho\n', "line 1: unterminated triple quote"),
    ("#flux: -n 'open\n", "line 1: No closing quotation"),
    ("#flux: -n1\n-- flux: -N1\n", "line 2: directive comment"),
])
def test_errors_name_the_line(script, message):
    with pytest.raises(ValueError) as e:
        DirectiveParser(script)
    assert str(e.value).startswith(message)


# -- flux batch ---------------------------------------------------------------------------------

def batch(*args, input=None):
    return run_flux("batch", "--dry-run", *args, input=input)


def test_flux_batch_honours_directives(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\n#flux: -n2\n#flux: --job-name=from-directive\n"
                      "#flux: --setattr=user.tag=a\nflux run hostname\n")
    res = batch(str(script))
    assert res.returncode == 0, res.stderr
    js = json.loads(res.stdout)
    slot = js["resources"][0]
    assert slot["type"] == "slot" and slot["count"] == 2
    assert js["attributes"]["system"]["job"]["name"] == "from-directive"
    assert js["attributes"]["user"]["tag"] == "a"
    # the command line overrides directives
    res = batch("-n3", "--job-name=cli", str(script))
    js = json.loads(res.stdout)
    assert js["resources"][0]["count"] == 3
    assert js["attributes"]["system"]["job"]["name"] == "cli"


def test_flux_batch_directives_on_stdin():
    res = batch(input="#!/bin/sh\n#flux: -n2\nhostname\n")
    assert res.returncode == 0, res.stderr
    js = json.loads(res.stdout)
    assert js["resources"][0]["count"] == 2
    assert "#flux: -n2" in js["attributes"]["system"]["files"]["script"]["data"]


def test_flux_batch_without_slots_still_fails(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nhostname\n")
    res = batch(str(script))
    assert res.returncode != 0 and "Traceback" not in res.stderr


@pytest.mark.parametrize("body,text", [
    ("#flux: -n2 hostname\n", "line 2: directives take only options, not 'hostname'"),
    ("echo\n#flux: -n2\n", "line 3: orphan 'flux:' directive"),
])
def test_flux_batch_bad_directives_are_one_line(tmp_path, body, text):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\n" + body)
    res = batch(str(script))
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"flux-batch: {script}: {text}")
