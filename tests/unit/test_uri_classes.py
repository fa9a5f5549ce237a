"""flux.uri's classes without an instance (spec 24.1): URI parts,
URIResolverURI's scheme:digits, JobURI's local/remote forms and errors,
FluxURIResolver's scheme handling and plugin list."""

import pytest

from flux.uri import URI, FluxURIResolver, JobURI, URIResolverURI


def test_uri_parts_and_query_dict():
    uri = URI("ssh://foo.com/tmp/foo?tag=bar&x")
    assert (uri.scheme, uri.netloc, uri.path) == ("ssh", "foo.com", "/tmp/foo")
    assert uri.query_dict == {"tag": ["bar"], "x": [""]}
    assert URI("local:///a").query_dict == {}


def test_resolver_uri_parses_digits():
    uri = URIResolverURI("jobid:1234?wait")
    assert (uri.scheme, uri.path, uri.query_dict) == ("jobid", "1234", {"wait": [""]})
    assert URIResolverURI("pid:77").path == "77"
    assert URIResolverURI("jobid:ƒabc/ƒdef").path == "ƒabc/ƒdef"


def test_job_uri_forms():
    assert JobURI("ssh://foo.com/tmp/foo?tag=bar").local == "local:///tmp/foo"
    assert JobURI("local:///tmp//x").remote.endswith("/tmp/x")
    assert JobURI("local:///tmp/x", remote_hostname="h1").remote == "ssh://h1/tmp/x"
    assert JobURI("ssh://h/p").remote == "ssh://h/p"
    with pytest.raises(ValueError, match="does not have a valid scheme"):
        JobURI("")
    with pytest.raises(ValueError, match="Cannot convert"):
        JobURI("loop://x").local


def test_resolver_schemes():
    resolver = FluxURIResolver()
    assert {"jobid", "pid"} <= set(resolver.plugins())
    assert resolver.resolve("local:///tmp/x?remote").uri == "local:///tmp/x?remote"
    with pytest.raises(NotImplementedError, match="No plugin for URI scheme nosuch"):
        resolver.resolve("nosuch:1")
    with pytest.raises(ValueError, match="Only one of"):
        resolver.resolve("jobid:1?local&remote")
    with pytest.raises(ValueError, match="not a process id"):
        resolver.resolve("pid:-3")
