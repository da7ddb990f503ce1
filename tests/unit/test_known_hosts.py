"""pssh.hostkeys: known_hosts parsing, matching, policies and recording (no network)."""

import base64
import hashlib
import hmac
import os
import shutil
import stat
import subprocess

import pytest

from pssh import hostkeys
from pssh.config import HostConfig
from pssh.exceptions import HostKeyError, PSSHError
from pssh.hostkeys import HostKeyCheck, KnownHostsFile, load_known_hosts, prepare


def blob(kind="ssh-ed25519", seed=b"1"):
    """A public key blob of ``kind`` (length-prefixed type name, then key material)."""
    name = kind.encode()
    material = hashlib.sha256(kind.encode() + seed).digest()
    return len(name).to_bytes(4, "big") + name + len(material).to_bytes(4, "big") + material


def b64(data):
    return base64.b64encode(data).decode()


def line(patterns, key, marker=None):
    text = "%s %s %s" % (patterns, hostkeys.key_type(key), b64(key))
    return "@%s %s" % (marker, text) if marker else text


def hashed(name, salt=b"0123456789abcdefghij"):
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return "|1|%s|%s" % (b64(salt), b64(digest))


class FakeSession:
    def __init__(self, key):
        self.key = key

    def hostkey(self):
        return self.key, 6


def write(tmp_path, name, *lines):
    path = tmp_path / name
    path.write_text("".join(text + "\n" for text in lines))
    return str(path)


KEY = blob(seed=b"server")
OTHER = blob(seed=b"impostor")
RSA = blob("ssh-rsa", b"rsa")


# -- helpers -------------------------------------------------------------------------------------

def test_fingerprint_and_key_type():
    digest = hashlib.sha256(KEY).digest()
    assert hostkeys.fingerprint(KEY) == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    assert hostkeys.key_type(KEY) == "ssh-ed25519"
    assert hostkeys.key_type(RSA) == "ssh-rsa"
    assert hostkeys.key_type(b"\x00\x00") is None
    assert hostkeys.key_type(b"\xff\xff\xff\xffabc") is None


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_fingerprint_matches_ssh_keygen(tmp_path):
    path = str(tmp_path / "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    public = open(path + ".pub").read().split()
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", path + ".pub"], check=True,
                         stdout=subprocess.PIPE).stdout.decode().split()[1]
    assert hostkeys.fingerprint(base64.b64decode(public[1])) == out


def test_lookup_name():
    assert hostkeys.lookup_name("Host.Example", 22) == "host.example"
    assert hostkeys.lookup_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"
    assert hostkeys.lookup_name("::1", 2200) == "[::1]:2200"


def test_validate_policy_and_files():
    assert hostkeys.validate_policy(None) == hostkeys.DEFAULT_POLICY == "accept-unknown"
    for name in ("strict", "accept-new", "off", "STRICT"):
        assert hostkeys.validate_policy(name) == name.lower()
    for bad in ("yes", "", 1, True):
        with pytest.raises(ValueError):
            hostkeys.validate_policy(bad)
    home = os.path.expanduser("~")
    assert hostkeys.known_hosts_files(None) == (home + "/.ssh/known_hosts",
                                                "/etc/ssh/ssh_known_hosts")
    assert hostkeys.known_hosts_files("~/kh") == (home + "/kh",)
    assert hostkeys.known_hosts_files([]) == ()
    with pytest.raises(ValueError):
        hostkeys.known_hosts_files([1])
    with pytest.raises(ValueError):
        hostkeys.known_hosts_files(5)


# -- parsing and matching ------------------------------------------------------------------------

def test_plain_comma_and_port_entries(tmp_path):
    path = write(tmp_path, "kh",
                 "# comment", "",
                 line("alpha,Beta.Example,10.0.0.1", KEY),
                 line("[gamma]:2222,[10.0.0.2]:2200", RSA),
                 "garbage", "host ssh-ed25519 !!notbase64!!")
    parsed = load_known_hosts(path)
    assert [entry.lineno for entry in parsed.match("alpha")] == [3]
    assert parsed.match("beta.example")[0].blob == KEY
    assert parsed.match("10.0.0.1")[0].keytype == "ssh-ed25519"
    assert parsed.match("[gamma]:2222")[0].blob == RSA
    assert parsed.match("gamma") == ()
    assert parsed.match("[alpha]:2222") == ()
    assert parsed.match("[10.0.0.2]:2200")[0].location == "%s:4" % path


def test_wildcards_and_negation(tmp_path):
    path = write(tmp_path, "kh",
                 line("*.example.com,!bad.example.com", KEY),
                 line("web?", RSA),
                 line("[10.1.*]:2222", OTHER))
    parsed = load_known_hosts(path)
    assert parsed.match("a.example.com")[0].blob == KEY
    assert parsed.match("bad.example.com") == ()
    assert parsed.match("example.com") == ()
    assert parsed.match("web1")[0].blob == RSA
    assert parsed.match("web12") == ()
    assert parsed.match("[10.1.2.3]:2222")[0].blob == OTHER
    assert parsed.match("10.1.2.3") == ()


def test_hashed_entries(tmp_path):
    path = write(tmp_path, "kh", line(hashed("secret.example"), KEY),
                 line(hashed("[secret.example]:2222", salt=b"another-salt-value!!"), RSA))
    parsed = load_known_hosts(path)
    assert parsed.match("secret.example")[0].blob == KEY
    assert parsed.match("[secret.example]:2222")[0].blob == RSA
    assert parsed.match("other.example") == ()


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_hashed_by_ssh_keygen(tmp_path):
    path = write(tmp_path, "kh", line("host1.example", KEY), line("[host2]:2201", RSA))
    subprocess.run(["ssh-keygen", "-H", "-f", path], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    text = open(path).read()
    assert "host1" not in text and "|1|" in text
    parsed = load_known_hosts(path)
    assert parsed.match("host1.example")[0].blob == KEY
    assert parsed.match("[host2]:2201")[0].blob == RSA
    assert parsed.match("host2") == ()


def test_markers(tmp_path, caplog):
    path = write(tmp_path, "kh", line("host", KEY, marker="revoked"),
                 line("*", RSA, marker="cert-authority"), line("host", OTHER, marker="weird"))
    with caplog.at_level("DEBUG", logger="pssh.hostkeys"):
        parsed = KnownHostsFile(path, open(path).read())
    found = parsed.match("host")
    assert [(entry.marker, entry.blob) for entry in found] == [("revoked", KEY),
                                                               ("cert-authority", RSA)]
    assert "cert-authority line read, but not used" in caplog.text
    assert "unknown marker @weird" in caplog.text


def test_cache_by_mtime_and_size(tmp_path):
    path = write(tmp_path, "kh", line("alpha", KEY))
    first = load_known_hosts(path)
    assert load_known_hosts(path) is first
    with open(path, "a") as known:
        known.write(line("beta", RSA) + "\n")
    second = load_known_hosts(path)
    assert second is not first and second.match("beta")[0].blob == RSA
    missing = load_known_hosts(str(tmp_path / "missing"))
    assert missing.entries == [] and missing.match("alpha") == ()


# -- policies ------------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    user = write(tmp_path, "known_hosts", line("[known]:2222", KEY), line("plain", KEY))
    system = write(tmp_path, "system_known_hosts", line(hashed("hashed"), KEY),
                   line("[revoked]:2222", KEY, marker="revoked"),
                   line("[revoked]:2222", OTHER))
    return [user, system]


@pytest.mark.parametrize("policy", ["accept-unknown", "strict", "accept-new"])
def test_known_key_passes(files, policy):
    for host, port in (("known", 2222), ("plain", 22), ("hashed", 22), ("KNOWN", 2222)):
        prepare(host, port, policy, files).verify(FakeSession(KEY))


@pytest.mark.parametrize("policy", ["accept-unknown", "strict", "accept-new"])
def test_changed_key_refused(files, policy):
    with pytest.raises(HostKeyError) as info:
        prepare("known", 2222, policy, files).verify(FakeSession(OTHER))
    exc = info.value
    assert isinstance(exc, PSSHError)
    assert (exc.host, exc.port, exc.reason) == ("known", 2222, "changed")
    assert exc.fingerprint == hostkeys.fingerprint(OTHER)
    assert exc.known_fingerprints == [hostkeys.fingerprint(KEY)]
    assert exc.locations == ["%s:1" % files[0]]
    text = str(exc)
    for part in ("known:2222", "changed", hostkeys.fingerprint(OTHER), hostkeys.fingerprint(KEY),
                 "%s:1" % files[0]):
        assert part in text


def test_other_key_type_counts_as_changed(files):
    with pytest.raises(HostKeyError) as info:
        prepare("plain", 22, "accept-new", files).verify(FakeSession(RSA))
    assert info.value.reason == "changed"
    assert "downgrade" in str(info.value)


@pytest.mark.parametrize("policy", ["accept-unknown", "strict", "accept-new"])
def test_revoked_refused(files, policy):
    with pytest.raises(HostKeyError) as info:
        prepare("revoked", 2222, policy, files).verify(FakeSession(KEY))
    assert info.value.reason == "revoked"
    assert "%s:2" % files[1] in str(info.value)
    # the other key of that host is fine
    prepare("revoked", 2222, policy, files).verify(FakeSession(OTHER))


def test_off_checks_nothing(files):
    assert prepare("revoked", 2222, "off", files) is None


def test_unknown_host(files, tmp_path):
    before = [open(path).read() for path in files]
    prepare("new", 22, "accept-unknown", files).verify(FakeSession(KEY))
    prepare("new", 22, None, files).verify(FakeSession(KEY))
    assert [open(path).read() for path in files] == before
    with pytest.raises(HostKeyError) as info:
        prepare("new", 22, "strict", files).verify(FakeSession(KEY))
    assert info.value.reason == "unknown"
    assert hostkeys.fingerprint(KEY) in str(info.value)


def test_accept_new_records(tmp_path):
    path = str(tmp_path / "sub" / "dir" / "known_hosts")
    other = write(tmp_path, "other", line("x", RSA))
    prepare("NewHost", 2201, "accept-new", [path, other]).verify(FakeSession(KEY))
    assert open(path).read() == "[newhost]:2201 ssh-ed25519 %s\n" % b64(KEY)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    prepare("newhost", 2201, "strict", [path]).verify(FakeSession(KEY))
    with pytest.raises(HostKeyError):
        prepare("newhost", 2201, "accept-new", [path]).verify(FakeSession(OTHER))
    prepare("plain22", 22, "accept-new", [path]).verify(FakeSession(RSA))
    assert open(path).read().splitlines()[1] == "plain22 ssh-rsa %s" % b64(RSA)
    entry = load_known_hosts(path).match("plain22")[0]
    assert entry.lineno == 2
    # a fresh parse (other process) sees the same
    assert KnownHostsFile(path, open(path).read()).match("plain22")[0].lineno == 2


def test_accept_new_appends_after_unterminated_line(tmp_path):
    path = tmp_path / "kh"
    path.write_text(line("old", KEY))
    prepare("new", 22, "accept-new", [str(path)]).verify(FakeSession(RSA))
    assert path.read_text().splitlines() == [line("old", KEY), line("new", RSA)]


def test_accept_new_once_for_concurrent_checks(tmp_path):
    path = str(tmp_path / "kh")
    first = prepare("dup", 22, "accept-new", [path])
    second = prepare("dup", 22, "accept-new", [path])  # gathered before the first recorded
    first.verify(FakeSession(KEY))
    second.verify(FakeSession(KEY))
    assert open(path).read().count("dup ") == 1
    third = prepare("dup2", 22, "accept-new", [path])
    prepare("dup2", 22, "accept-new", [path]).verify(FakeSession(KEY))
    with pytest.raises(HostKeyError):
        third.verify(FakeSession(OTHER))


def test_accept_new_unwritable_still_accepts(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level("INFO", logger="pssh.hostkeys"):
        prepare("h", 22, "accept-new", [str(blocker / "known_hosts")]).verify(FakeSession(KEY))
        prepare("h", 22, "accept-new", []).verify(FakeSession(KEY))
    assert "could not record" in caplog.text and "no known_hosts file" in caplog.text


def test_hostkey_methods_prefers_known_types(tmp_path):
    path = write(tmp_path, "kh", line("rsa-host", RSA), line("ed-host", KEY))
    methods = prepare("rsa-host", 22, "strict", [path]).hostkey_methods().split(",")
    assert methods[:3] == ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    assert "ssh-ed25519" in methods
    assert prepare("ed-host", 22, None, [path]).hostkey_methods().startswith("ssh-ed25519,")
    assert prepare("unknown", 22, None, [path]).hostkey_methods() is None


def test_hashed_lines_searched_only_when_needed(tmp_path):
    path = write(tmp_path, "kh", line("mixed", KEY), line(hashed("mixed"), RSA),
                 line(hashed("onlyhashed"), RSA),
                 line(hashed("mixed", salt=b"revocation-salt-1234"), OTHER, marker="revoked"))
    check = prepare("mixed", 22, "strict", [path])
    assert [entry.blob for entry in check.keys] == [KEY]          # hashed keys not searched
    assert [entry.blob for entry in check.revoked] == [OTHER]     # hashed revocations are
    check.verify(FakeSession(KEY))
    # the offered key is only in a hashed line: found on the second look
    check = prepare("mixed", 22, "strict", [path])
    check.verify(FakeSession(RSA))
    assert sorted(entry.lineno for entry in check.keys) == [1, 2]
    with pytest.raises(HostKeyError) as info:
        prepare("mixed", 22, "strict", [path]).verify(FakeSession(OTHER))
    assert info.value.reason == "revoked"
    with pytest.raises(HostKeyError) as info:
        prepare("mixed", 22, "strict", [path]).verify(FakeSession(blob(seed=b"x")))
    assert info.value.reason == "changed" and len(info.value.known_fingerprints) == 2
    # a host known only by a hashed line: searched before the handshake (key type order)
    only = prepare("onlyhashed", 22, "strict", [path])
    assert only.hostkey_methods().startswith("rsa-sha2-512,")
    only.verify(FakeSession(RSA))
    assert [entry.lineno for entry in load_known_hosts(path).match("mixed")] == [1, 2, 4]


def test_check_gathers_from_every_file(files):
    check = HostKeyCheck("revoked", 2222, "strict", tuple(files))
    assert [entry.blob for entry in check.keys] == [OTHER]
    assert [entry.blob for entry in check.revoked] == [KEY]


def test_accept_new_with_unrelated_revoked_line_records(tmp_path):
    # Regression: a host covered only by an @revoked line of another key looped forever.
    path = write(tmp_path, "kh", line("*", OTHER, marker="revoked"))
    prepare("h", 22, "accept-new", [path]).verify(FakeSession(KEY))
    assert open(path).read().splitlines()[1] == line("h", KEY)
    with pytest.raises(HostKeyError) as info:
        prepare("h2", 22, "accept-new", [path]).verify(FakeSession(OTHER))
    assert info.value.reason == "revoked"


# -- @cert-authority lines (host certificates: libssh2 cannot negotiate them) -------------------

CA = blob(seed=b"certificate authority")


@pytest.fixture
def ca_files(tmp_path):
    user = write(tmp_path, "known_hosts",
                 "@cert-authority *.corp,!bad.corp %s %s" % (hostkeys.key_type(CA), b64(CA)),
                 line("[ported]:2222", CA, marker="cert-authority"),
                 line("keyed.corp", KEY))
    system = write(tmp_path, "ssh_known_hosts",
                   line(hashed("secret.example"), CA, marker="CERT-AUTHORITY"))
    return [user, system]


def test_cert_authority_lines_match_like_key_lines(ca_files):
    user, system = ca_files
    cases = {("a.corp", 22): ["%s:1" % user], ("bad.corp", 22): [], ("a.corp", 2222): [],
             ("ported", 2222): ["%s:2" % user], ("ported", 22): [],
             ("secret.example", 22): ["%s:1" % system], ("SECRET.example", 22): ["%s:1" % system],
             ("keyed.corp", 22): ["%s:1" % user]}
    for (host, port), locations in cases.items():
        check = prepare(host, port, "strict", ca_files)
        assert [entry.location for entry in check.authorities] == locations, host
        assert all(entry.blob == CA for entry in check.authorities)
        expected_keys = [KEY] if host == "keyed.corp" else []
        assert [entry.blob for entry in check.keys] == expected_keys
        assert check.revoked == []


def test_cert_authority_never_makes_a_host_known(ca_files):
    # A CA key is not a host key: the host stays unknown, and libssh2 is not asked for
    # certificate host key methods (it would fail the handshake on them).
    check = prepare("a.corp", 22, "strict", ca_files)
    assert check.hostkey_methods() is None
    with pytest.raises(HostKeyError) as info:
        check.verify(FakeSession(CA))
    exc = info.value
    assert (exc.host, exc.port, exc.reason) == ("a.corp", 22, "unknown")
    assert "@cert-authority %s:1 for a.corp not used" % ca_files[0] in str(exc)
    assert "libssh2 cannot negotiate certificate host keys" in str(exc)
    methods = prepare("keyed.corp", 22, "strict", ca_files).hostkey_methods().split(",")
    assert methods[0] == "ssh-ed25519" and "-cert-" not in methods[1]


def test_cert_authority_named_in_changed_error(ca_files):
    with pytest.raises(HostKeyError) as info:
        prepare("keyed.corp", 22, "accept-unknown", ca_files).verify(FakeSession(OTHER))
    assert info.value.reason == "changed"
    assert info.value.locations == ["%s:3" % ca_files[0]]
    assert "@cert-authority %s:1 for keyed.corp not used" % ca_files[0] in str(info.value)
    # no note where no CA line matches
    with pytest.raises(HostKeyError) as info:
        prepare("nothing.example", 22, "strict", ca_files).verify(FakeSession(OTHER))
    assert "cert-authority" not in str(info.value)


def test_cert_authority_acceptance_warns_once_per_line(ca_files, caplog, monkeypatch):
    monkeypatch.setattr(hostkeys, "_WARNED_AUTHORITIES", set())
    before = [open(path).read() for path in ca_files]
    with caplog.at_level("DEBUG", logger="pssh.hostkeys"):
        prepare("a.corp", 22, "accept-unknown", ca_files).verify(FakeSession(KEY))
        prepare("b.corp", 22, None, ca_files).verify(FakeSession(KEY))
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "[a.corp] accepting host key" in text and "without certificate verification" in text
    assert "%s:1" % ca_files[0] in text
    assert any("[b.corp]" in record.getMessage() for record in caplog.records
               if record.levelname == "DEBUG")
    assert [open(path).read() for path in ca_files] == before
    caplog.clear()
    with caplog.at_level("WARNING", logger="pssh.hostkeys"):
        prepare("secret.example", 22, "accept-new", ca_files).verify(FakeSession(KEY))
    assert "%s:1" % ca_files[1] in caplog.text
    assert open(ca_files[0]).read().splitlines()[-1] == line("secret.example", KEY)
    assert prepare("secret.example", 22, "off", ca_files) is None


# -- HostConfig fields -------------------------------------------------------------------------

def test_host_config_new_fields():
    hc = HostConfig(host_key_policy="strict", known_hosts=["/a", "/b"], hostname="10.0.0.1",
                    identity_files=["~/k"], identities_only=True, proxy_jump="bastion")
    assert (hc.host_key_policy, hc.known_hosts, hc.hostname) == ("strict", ["/a", "/b"],
                                                                 "10.0.0.1")
    assert (hc.identity_files, hc.identities_only, hc.proxy_jump) == (["~/k"], True, "bastion")
    for field, value in (("host_key_policy", "sometimes"), ("host_key_policy", 1),
                         ("known_hosts", "/a"), ("known_hosts", [1]), ("identity_files", "k"),
                         ("identities_only", "yes"), ("hostname", 5), ("proxy_jump", ["b"])):
        with pytest.raises(ValueError) as info:
            HostConfig(**{field: value})
        assert field in str(info.value)


def test_add_after_another_process_appended_reads_the_file_again(tmp_path):
    path = write(tmp_path, "known_hosts", line("alpha", KEY))
    parsed = load_known_hosts(path)
    with open(path, "a") as other_process:          # a shard adding its host meanwhile
        other_process.write(line("beta", OTHER) + "\n")
    parsed.add("gamma", RSA)
    current = load_known_hosts(path)
    assert [current.match(name)[0].blob for name in ("alpha", "beta", "gamma")] == [
        KEY, OTHER, RSA]
    assert current.match("gamma")[0].location.endswith(":3")
    # with nothing added elsewhere, the copy that added stays the cached one
    current.add("delta", KEY)
    assert load_known_hosts(path) is current
