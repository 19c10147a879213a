"""Start-up failures are fatal with a clear message, never a crash."""
import socket
import subprocess

from harness import free_port, render_config, rblmuxd_path


def _run(tmp_path, config_text):
    path = tmp_path / "rblmuxd.conf"
    path.write_text(config_text)
    return subprocess.run([str(rblmuxd_path()), "-c", str(path)], capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def _config(port, **server):
    keys = {"listen": f"127.0.0.1:{port}", "threads": 2, **server}
    return render_config([("server", keys), ("upstream", {"servers": "127.0.0.1:9"}),
                          ("ptr", {"enabled": False})])


def test_listen_port_in_use_is_a_clear_error(tmp_path):
    port = free_port()
    # A socket without SO_REUSEPORT: rblmuxd's own cannot join it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", port))
        res = _run(tmp_path, _config(port))
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (udp)" in res.stderr
    assert "Address already in use" in res.stderr
    assert "Assertion" not in res.stderr and res.returncode > 0


def test_unknown_user_is_a_clear_error(tmp_path):
    res = _run(tmp_path, _config(free_port(), user="no-such-user-rblmux"))
    assert res.returncode == 1
    assert "user no-such-user-rblmux: no such user" in res.stderr


def test_metrics_port_in_use_is_a_clear_error(tmp_path):
    port, mport = free_port(), free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", mport))
        busy.listen()
        res = _run(tmp_path, _config(port, metrics=f"127.0.0.1:{mport}"))
    assert res.returncode == 1
    assert "metrics" in res.stderr
