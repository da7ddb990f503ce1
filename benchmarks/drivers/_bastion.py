"""The ``bastion`` driver mode (issue 5): N target connections through ONE bastion sshd.

A driver registers ``bastion(args, via) -> [(nlines, last_line, exit_code), ...]`` with
:func:`register`. ``via`` is ``None`` for the direct variant (``bastion_N_direct``: the same
code, no proxy) or a dict ``{"host", "port", "user", "key"}`` naming the bastion; every target
``args["hosts"][i]:args["ports"][i]`` is then reached through it (how many bastion connections
the client opens is its own business: the harness counts the logins in the bastion's sshd log).
The driver connects, runs ``args["command"]`` on every host, reads every stdout line, gets the
exit code and disconnects (and closes its bastion connection, when the library has a way to).

Timed: all of it, bastion connection included. Checked afterwards, as in ``stream`` mode:
per-host line count, last line and exit code.
"""
import _common


def register(bastion):
    """Make ``bastion(args, via)`` this driver's implementation of the ``bastion`` mode.
    A host whose exit code is None failed in the client: its ``last_line`` is the error."""
    def run(args, via):
        results = bastion(args, via)
        failed = [(i, last) for i, (_n, last, code) in enumerate(results) if code is None]
        if failed:
            raise _common.CheckError("%d of %d hosts failed, first: host #%d: %s" % (
                len(failed), len(results), failed[0][0], failed[0][1]))
        return results

    def mode(args):
        via = args.get("bastion")
        out = _common.run_stream(args, lambda a: run(a, via))
        out.update(hosts=len(args["hosts"]), via_bastion=bool(via))
        return out
    _common.MODES["bastion"] = mode
