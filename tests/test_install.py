"""Issue 7 packaging: `meson install` puts the programs, the default
configuration, the man pages and the systemd unit where they belong; the
unit passes systemd-analyze; the man pages render without warnings; and
rblmuxd speaks sd_notify (READY, RELOADING, STOPPING) by hand."""

import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

import harness
from harness import source

DOC = harness.REPO / "doc"
MAN_PAGES = {"rblmuxd.8": "man8", "rblmux.1": "man1", "rblmux.conf.5": "man5"}


def build_options():
    out = subprocess.run(["meson", "introspect", "--buildoptions", str(harness.build_dir())],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {o["name"]: o["value"] for o in json.loads(out)}


def under(destdir, prefix, path):
    """Where meson puts an install path (absolute, or relative to prefix)."""
    full = Path(path) if os.path.isabs(path) else Path(prefix) / path
    return Path(destdir) / full.relative_to("/")


def meson_install(destdir):
    res = subprocess.run(["meson", "install", "-C", str(harness.build_dir()), "--destdir",
                          str(destdir), "--no-rebuild"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not shutil.which("meson"):
        pytest.skip("meson is not installed")
    destdir = tmp_path_factory.mktemp("destdir")
    meson_install(destdir)
    return destdir, build_options()


def test_install_puts_every_file_in_place(installed):
    destdir, o = installed
    p = o["prefix"]
    sbin = under(destdir, p, o["sbindir"]) / "rblmuxd"
    assert sbin.is_file() and os.access(sbin, os.X_OK)
    assert os.access(under(destdir, p, o["bindir"]) / "rblmux", os.X_OK)
    conf = under(destdir, p, o["sysconfdir"]) / "rblmux" / "rblmux.conf"
    assert conf.read_text() == (harness.REPO / "etc" / "rblmux.conf").read_text()
    for page, section in MAN_PAGES.items():
        assert (under(destdir, p, o["mandir"]) / section / page).is_file(), page
    dash = under(destdir, p, o["datadir"]) / "rblmux" / "grafana-dashboard.json"
    assert json.loads(dash.read_text())["panels"]
    # The installed daemon reads the installed configuration.
    res = subprocess.run([str(sbin), "-t", "-c", str(conf)], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0 and "configuration OK" in res.stdout, res.stderr


def test_unit_names_the_installed_paths(installed):
    destdir, o = installed
    p = o["prefix"]
    unit = Path(destdir) / Path(p).relative_to("/") / "lib/systemd/system/rblmuxd.service"
    text = unit.read_text()
    sbin = (Path(p) / o["sbindir"]) / "rblmuxd"
    conf = (Path(p) / o["sysconfdir"]) / "rblmux" / "rblmux.conf"
    assert f"ExecStart={sbin} -c {conf}\n" in text
    assert f"ExecStartPre={sbin} -t -c {conf}\n" in text
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "PrivateDevices=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                 "SystemCallFilter=@system-service seccomp", "MemoryDenyWriteExecute=yes",
                 "LockPersonality=yes", "RestrictRealtime=yes", "RestrictNamespaces=yes",
                 "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
                 "ProtectControlGroups=yes"):
        assert line + "\n" in text, line
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    # verify wants the programs it names to exist: point it at the destdir.
    checked = Path(destdir).parent / "verify" / "rblmuxd.service"
    checked.parent.mkdir(exist_ok=True)
    checked.write_text(text.replace(str(sbin), str(Path(destdir) / sbin.relative_to("/"))))
    res = subprocess.run([analyze, "verify", "--man=no", str(checked)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def test_reinstall_keeps_an_edited_configuration(installed, tmp_path):
    destdir, o = installed
    conf = under(destdir, o["prefix"], o["sysconfdir"]) / "rblmux" / "rblmux.conf"
    conf.write_text(conf.read_text() + "\n# edited by the admin\n")
    out = meson_install(destdir)
    assert conf.read_text().endswith("# edited by the admin\n")
    new = conf.with_name("rblmux.conf.new")
    assert new.read_text() == (harness.REPO / "etc" / "rblmux.conf").read_text()
    assert "kept" in out


@pytest.mark.parametrize("page", sorted(MAN_PAGES))
def test_man_page_renders_without_warnings(page):
    groff = shutil.which("groff")
    if not groff:
        pytest.skip("groff is not installed")
    res = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(DOC / page)],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert res.returncode == 0 and res.stderr == "", res.stderr
    text = subprocess.run([groff, "-man", "-Tutf8", "-P-cbou", str(DOC / page)],
                          capture_output=True,
                          text=True, timeout=30).stdout
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert heading in text, heading


def test_man_page_example_configuration_is_valid(tmp_path):
    lines, inside, seen = [], False, False
    for line in (DOC / "rblmux.conf.5").read_text().splitlines():
        if line.startswith(".SH EXAMPLE"):
            seen = True
        elif seen and line == ".nf":
            inside = True
        elif inside and line == ".fi":
            break
        elif inside:
            lines.append(line.replace("\\-", "-"))
    assert lines
    code, err, _ = harness.check_config(tmp_path, "\n".join(lines) + "\n")
    assert code == 0, err


def test_sd_notify_ready_reload_stopping(stack, monkeypatch, tmp_path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        s = stack([source("alpha", 1)])
        ready = sock.recv(4096).decode()
        assert ready.startswith("READY=1\nSTATUS=answering rblmux.internal with 1 sources")
        s.daemon.proc.signal(signal.SIGHUP)
        reloading = sock.recv(4096).decode().split("\n")
        assert reloading[0] == "RELOADING=1"
        assert reloading[1].startswith("MONOTONIC_USEC=") and int(reloading[1][15:]) > 0
        assert sock.recv(4096).decode() == "READY=1"
        s.daemon.proc.signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert s.daemon.proc.wait(10) == 0
    finally:
        sock.close()
