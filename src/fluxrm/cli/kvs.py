"""``flux kvs``: read and write the key-value store.

Subcommands (after flux-kvs(1); ``-N/--namespace NS`` goes before or after
the subcommand)::

    get [-r] [-l] [-w [-c N] [-u] [-f]] [-W] KEY...   print values
    put [-r] [-A] [-n] [-S] KEY=VALUE...            store values (-r: VALUE "-"
                                                    reads stdin); one commit
    ls [-R] [-d] [-F] [-1] [KEY...]                 list directory entries
    dir [-R] [-d] [-w COLS] [KEY]                   print "key = value" lines
    unlink [-R] [-f] KEY...                         remove keys
    mkdir KEY...                                    create empty directories
    link TARGET LINKNAME                            create a symlink
    readlink KEY...                                 print symlink targets
    watch [-c N] [-W] [-u] [-f] KEY                 print the value, then changes
    namespace create [-o OWNER] NAME... | remove NAME... | list

Values are printed as stored (the text up to the first NUL) followed by a
newline; ``-r`` writes the raw bytes with no newline.  ``put`` stores VALUE
as given: ``flux kvs put a=5`` reads back as the integer 5 in Python.
Errors print one line on stderr and exit 1; usage errors exit 2.
"""

import argparse
import base64
import errno
import os
import sys

import flux
from flux.constants import (
    FLUX_KVS_APPEND,
    FLUX_KVS_NO_MERGE,
    FLUX_KVS_READDIR,
    FLUX_KVS_READLINK,
    FLUX_KVS_SYNC,
    FLUX_KVS_WAITCREATE,
    FLUX_KVS_WATCH,
    FLUX_KVS_WATCH_FULL,
    FLUX_KVS_WATCH_UNIQ,
    FLUX_RPC_NORESPONSE,
    FLUX_RPC_STREAMING,
)


class UsageError(Exception):
    pass


class CommandError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _fail(text):
    raise CommandError(text)


def _errtext(exc):
    return exc.strerror or str(exc)


def _strip_errname(text):
    # "ENOENT: No such file or directory" -> "No such file or directory"
    name, sep, rest = text.partition(": ")
    if sep and name.startswith("E") and name.isupper():
        return rest
    return text


def _key_error(key, exc):
    return f"{key}: {_strip_errname(_errtext(exc))}"


def _namespace(args):
    return (args.namespace or args.global_namespace
            or os.environ.get("FLUX_KVS_NAMESPACE") or "primary")


def _lookup(h, args, key, flags=0):
    """The tree object at ``key`` (raises OSError)."""
    return h.rpc("kvs.lookup", {"key": key, "namespace": _namespace(args),
                                "flags": flags}).get()["val"]


def _val_bytes(treeobj):
    return base64.b64decode(treeobj.get("data") or "")


def _text(data):
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    return data.decode("utf-8", errors="replace")


def _out_value(data, raw, label=None):
    out = sys.stdout
    if label is not None:
        out.write(f"{label}=")
    if raw:
        out.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        out.write(_text(data) + "\n")
    out.flush()


def _commit(h, args, ops, flags=0):
    h.rpc("kvs.commit", {"namespace": _namespace(args), "flags": flags,
                         "ops": ops}).get()


def _val_op(key, data, flags=0):
    return {"key": key, "flags": flags,
            "dirent": {"ver": 1, "type": "val",
                       "data": base64.b64encode(data).decode("ascii")}}


# -- get / watch ----------------------------------------------------------------
def cmd_get(h, args):
    if args.watch or args.waitcreate:
        if len(args.keys) != 1:
            _fail("only one key may be watched")
        return _watch(h, args, args.keys[0], count=args.count if args.watch else 1)
    rc = 0
    for key in args.keys:
        try:
            data = _val_bytes(_lookup(h, args, key))
        except OSError as exc:
            from fluxrm.cli.main import report_error

            report_error(args.prog, exc, _key_error(key, exc))
            rc = 1
            continue
        _out_value(data, args.raw, key if args.label else None)
    return rc


def cmd_watch(h, args):
    return _watch(h, args, args.key, count=args.count)


def _watch(h, args, key, count):
    flags = FLUX_KVS_WATCH
    if args.waitcreate:
        flags |= FLUX_KVS_WAITCREATE
    if getattr(args, "uniq", False):
        flags |= FLUX_KVS_WATCH_UNIQ
    if getattr(args, "full", False):
        flags |= FLUX_KVS_WATCH_FULL
    rpc = h.rpc("kvs-watch.lookup", {"key": key, "namespace": _namespace(args),
                                     "flags": flags}, flags=FLUX_RPC_STREAMING)
    seen = 0
    cancelled = False
    while True:
        try:
            rsp = rpc.get()
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                return 0
            if cancelled:
                return 0
            _fail(_key_error(key, exc))
        rpc.reset()
        if cancelled:
            continue  # drain until ENODATA
        _out_value(_val_bytes(rsp["val"]), getattr(args, "raw", False),
                   key if getattr(args, "label", False) else None)
        seen += 1
        if count and seen >= count:
            h.rpc("kvs-watch.cancel", {"matchtag": rpc._state.matchtag},
                  flags=FLUX_RPC_NORESPONSE)
            cancelled = True


# -- put / unlink / mkdir / link ------------------------------------------------------
def cmd_put(h, args):
    ops = []
    for item in args.pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"put: you must specify a value as key=value ({item!r})")
        if args.raw and value == "-":
            data = sys.stdin.buffer.read()
        else:
            data = value.encode("utf-8", errors="surrogateescape")
        ops.append(_val_op(key, data, FLUX_KVS_APPEND if args.append else 0))
    flags = (FLUX_KVS_NO_MERGE if args.no_merge else 0) | (FLUX_KVS_SYNC if args.sync else 0)
    _commit(h, args, ops, flags)
    return 0


def cmd_unlink(h, args):
    ops = []
    for key in args.keys:
        try:
            obj = _lookup(h, args, key, FLUX_KVS_READLINK)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                obj = None  # not a symlink: look it up below
            elif exc.errno == errno.ENOENT:
                if args.force:
                    continue
                _fail(_key_error(key, exc))
            else:
                _fail(_key_error(key, exc))
        if obj is None:
            try:
                _lookup(h, args, key)
            except OSError as exc:
                if exc.errno == errno.EISDIR:
                    if not args.recursive:
                        entries = _lookup(h, args, key, FLUX_KVS_READDIR).get("data")
                        if entries:
                            _fail(f"{key}: cannot unlink non-empty directory")
                elif exc.errno == errno.ENOENT:
                    if args.force:
                        continue
                    _fail(_key_error(key, exc))
                else:
                    _fail(_key_error(key, exc))
        ops.append({"key": key, "flags": 0, "dirent": None})
    if ops:
        _commit(h, args, ops)
    return 0


def cmd_mkdir(h, args):
    ops = []
    for key in args.keys:
        try:
            _lookup(h, args, key, FLUX_KVS_READLINK)
            exists = True
        except OSError as exc:
            exists = exc.errno != errno.ENOENT
            if exists and exc.errno == errno.EINVAL:
                exists = _exists(h, args, key)
        if exists:
            _fail(f"{key}: File exists")
        ops.append({"key": key, "flags": 0,
                    "dirent": {"ver": 1, "type": "dir", "data": {}}})
    _commit(h, args, ops)
    return 0


def _exists(h, args, key):
    try:
        _lookup(h, args, key)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        if exc.errno == errno.EISDIR:
            return True
        raise
    return True


def cmd_link(h, args):
    _commit(h, args, [{"key": args.linkname, "flags": 0, "dirent": {
        "ver": 1, "type": "symlink", "data": {"target": args.target}}}])
    return 0


def cmd_readlink(h, args):
    rc = 0
    for key in args.keys:
        try:
            obj = _lookup(h, args, key, FLUX_KVS_READLINK)
        except OSError as exc:
            text = "not a symlink" if exc.errno == errno.EINVAL else None
            print(f"{args.prog}: {key}: {text or _strip_errname(_errtext(exc))}",
                  file=sys.stderr)
            rc = 1
            continue
        print(obj["data"]["target"])
    return rc


# -- ls / dir ---------------------------------------------------------------------
def _readdir(h, args, key, nodata=True):
    """Sorted [(name, treeobj)] of directory ``key``."""
    rsp = h.rpc("kvs.lookup", {"key": key, "namespace": _namespace(args),
                               "flags": FLUX_KVS_READDIR, "nodata": nodata}).get()
    data = rsp["val"].get("data") or {}
    return sorted(data.items(), key=lambda kv: kv[0].encode("utf-8"))


def _join(path, name):
    if path in (".", ""):
        return name
    return path.rstrip(".") + "." + name


def _suffix(obj, classify):
    if not classify:
        return ""
    kind = obj.get("type")
    return "." if kind == "dir" else "@" if kind == "symlink" else ""


def _print_names(names, one_per_line, width):
    if not names:
        return
    if one_per_line:
        for name in names:
            print(name)
        return
    colw = max(len(n) for n in names) + 2
    ncols = max(1, width // colw)
    nrows = (len(names) + ncols - 1) // ncols
    for r in range(nrows):
        row = [names[c * nrows + r] for c in range(ncols) if c * nrows + r < len(names)]
        print("".join(n.ljust(colw) for n in row[:-1]) + row[-1])


def cmd_ls(h, args):
    keys = args.keys or ["."]
    one = args.one or not sys.stdout.isatty()
    width = args.width or _termwidth()
    rc = 0
    files = []
    dirs = []
    for key in keys:
        try:
            _lookup(h, args, key)
            files.append(key)  # a value: listed by name
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                dirs.append(key)
            else:
                print(f"{args.prog}: {_key_error(key, exc)}", file=sys.stderr)
                rc = 1
    if args.directory:
        files.extend(d + ("." if args.classify else "") for d in dirs)
        dirs = []
    _print_names(files, one, width)
    show_header = args.recursive or len(keys) > 1
    first = not files
    for key in dirs:
        first = _ls_dir(h, args, key, show_header, first, one, width)
    return rc


def _ls_dir(h, args, key, header, first, one, width):
    entries = _readdir(h, args, key)
    if header:
        if not first:
            print()
        print(f"{key}:")
    first = False
    _print_names([name + _suffix(obj, args.classify) for name, obj in entries], one, width)
    if args.recursive:
        for name, obj in entries:
            if obj.get("type") == "dir":
                first = _ls_dir(h, args, _join(key, name), True, first, one, width)
    return first


def _termwidth():
    try:
        return int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
    except (ValueError, OSError):
        return 80


def cmd_dir(h, args):
    key = args.key or "."
    try:
        _lookup(h, args, key)
        _fail(f"{key}: Not a directory")
    except OSError as exc:
        if exc.errno != errno.EISDIR:
            _fail(_key_error(key, exc))
    _dir(h, args, key)
    return 0


def _dir(h, args, key):
    for name, obj in _readdir(h, args, key, nodata=False):
        full = _join(key, name)
        kind = obj.get("type")
        if kind == "dir":
            if args.recursive:
                _dir(h, args, full)
            else:
                print(f"{full}.")
        elif kind == "symlink":
            print(f"{full} -> {obj['data']['target']}")
        else:
            line = f"{full} = " + ("" if args.directory_only else _text(_val_bytes(obj)))
            if args.width and len(line) > args.width:
                line = line[:max(args.width - 3, 0)] + "..."
            print(line)


# -- namespaces --------------------------------------------------------------------------
def cmd_namespace(h, args):
    if args.nscmd == "create":
        owner = os.getuid() if args.owner is None else args.owner
        for name in args.names:
            try:
                h.rpc("kvs.namespace-create", {"namespace": name, "owner": owner,
                                               "flags": 0}).get()
            except OSError as exc:
                _fail(f"{name}: {_errtext(exc)}")
    elif args.nscmd == "remove":
        for name in args.names:
            try:
                h.rpc("kvs.namespace-remove", {"namespace": name}).get()
            except OSError as exc:
                _fail(f"{name}: {_errtext(exc)}")
    else:
        rsp = h.rpc("kvs.namespace-list").get()
        print(f"{'NAMESPACE':<36} {'OWNER':<12} FLAGS")
        for ns in rsp["namespaces"]:
            print(f"{ns['namespace']:<36} {ns['owner']:<12} 0x{ns['flags']:08X}")
    return 0


# -- parsing ---------------------------------------------------------------------------------
def build_parser(prog):
    parser = _Parser(prog=prog, description="Read and write the Flux KVS.")
    parser.add_argument("-N", "--namespace", dest="global_namespace", metavar="NS",
                        help="KVS namespace (for every subcommand)")
    sub = parser.add_subparsers(dest="cmd", metavar="SUBCOMMAND", parser_class=_Parser)

    def add(name, fn, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-N", "--namespace", metavar="NS", help="KVS namespace")
        p.set_defaults(fn=fn)
        return p

    p = add("get", cmd_get, "print the value of one or more keys")
    p.add_argument("-r", "--raw", action="store_true", help="print raw bytes, no newline")
    p.add_argument("-l", "--label", action="store_true", help="prefix output with KEY=")
    p.add_argument("-W", "--waitcreate", action="store_true",
                   help="wait for the key to exist")
    p.add_argument("-w", "--watch", action="store_true", help="print changes too")
    p.add_argument("-c", "--count", type=int, default=0, metavar="N",
                   help="with --watch, stop after N values")
    p.add_argument("-u", "--uniq", action="store_true", help="only changed values")
    p.add_argument("-f", "--full", action="store_true",
                   help="notice changes made without naming the key")
    p.add_argument("keys", nargs="+", metavar="KEY")

    p = add("put", cmd_put, "store values and commit them")
    p.add_argument("-r", "--raw", action="store_true",
                   help="store VALUE as raw bytes ('-' reads stdin)")
    p.add_argument("-A", "--append", action="store_true", help="append to the value")
    p.add_argument("-n", "--no-merge", action="store_true", help="commit with NO_MERGE")
    p.add_argument("-S", "--sync", action="store_true", help="flush and checkpoint")
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")

    p = add("ls", cmd_ls, "list directory entries")
    p.add_argument("-R", "--recursive", action="store_true", help="list subdirectories")
    p.add_argument("-d", "--directory", action="store_true",
                   help="list directories, not their contents")
    p.add_argument("-F", "--classify", action="store_true",
                   help="append '.' to directories, '@' to symlinks")
    p.add_argument("-1", "--one", action="store_true", help="one entry per line")
    p.add_argument("-w", "--width", type=int, default=0, metavar="COLS",
                   help="output width")
    p.add_argument("keys", nargs="*", metavar="KEY")

    p = add("dir", cmd_dir, "print the keys and values of a directory")
    p.add_argument("-R", "--recursive", action="store_true", help="descend into subdirectories")
    p.add_argument("-d", "--directory-only", action="store_true",
                   help="print keys without values")
    p.add_argument("-w", "--width", type=int, default=0, metavar="COLS",
                   help="truncate lines to COLS columns")
    p.add_argument("key", nargs="?", metavar="KEY")

    p = add("unlink", cmd_unlink, "remove keys")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="remove non-empty directories too")
    p.add_argument("-f", "--force", action="store_true", help="ignore missing keys")
    p.add_argument("keys", nargs="+", metavar="KEY")

    p = add("mkdir", cmd_mkdir, "create empty directories")
    p.add_argument("keys", nargs="+", metavar="KEY")

    p = add("link", cmd_link, "create a symbolic link LINKNAME -> TARGET")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("linkname", metavar="LINKNAME")

    p = add("readlink", cmd_readlink, "print the targets of symbolic links")
    p.add_argument("keys", nargs="+", metavar="KEY")

    p = add("watch", cmd_watch, "print a key's value, then each change")
    p.add_argument("-c", "--count", type=int, default=0, metavar="N",
                   help="stop after N values")
    p.add_argument("-W", "--waitcreate", action="store_true",
                   help="wait for the key to exist")
    p.add_argument("-u", "--uniq", action="store_true", help="only changed values")
    p.add_argument("-f", "--full", action="store_true",
                   help="notice changes made without naming the key")
    p.add_argument("key", metavar="KEY")

    p = add("namespace", cmd_namespace, "create, remove or list namespaces")
    nsub = p.add_subparsers(dest="nscmd", metavar="create|remove|list",
                            parser_class=_Parser)
    q = nsub.add_parser("create", help="create namespaces")
    q.add_argument("-o", "--owner", type=int, metavar="UID", help="owner uid")
    q.add_argument("names", nargs="+", metavar="NAME")
    q = nsub.add_parser("remove", help="remove namespaces")
    q.add_argument("names", nargs="+", metavar="NAME")
    nsub.add_parser("list", help="list namespaces")
    return parser


def main(argv, prog="flux-kvs", command="kvs"):
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.cmd is None:
            raise UsageError("missing subcommand (get, put, ls, dir, unlink, "
                             "mkdir, link, readlink, watch, namespace)")
        if args.cmd == "namespace" and args.nscmd is None:
            raise UsageError("namespace: missing subcommand (create, remove, list)")
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    args.prog = prog
    try:
        h = flux.Flux()
        return args.fn(h, args)
    except CommandError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        from fluxrm.cli.main import report_error

        report_error(prog, exc, _strip_errname(_errtext(exc)))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
