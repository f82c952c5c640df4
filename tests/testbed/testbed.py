"""Disposable nested-KVM hypervisor ("L1") for the collection's tests and demo.

The L1 is a Debian 12 guest built with mmdebstrap, booted under TCG with an AMD SVM
CPU so that KVM works inside it.  It gets:

* user-mode networking with SSH forwarded to a free port on 127.0.0.1 (NIC ``mgmt0``),
* a second NIC named ``em1`` on an isolated user-mode network (10.101.0.0/16, the lab
  network of the write-up) whose DHCP hands the L1 the address 10.101.1.25; or, with
  ``--lan NAME``, on a virtual LAN shared with one other bed of that LAN (a QEMU dgram
  link between the two qemu processes over 127.0.0.1, no DHCP: the tests give the
  addresses), so that two hypervisors' bridges are joined as on one switch,
* a second 8 GiB virtio disk (``/dev/vdb``) for LVM,
* its serial console logged to a file, and a throw-away qcow2 overlay per run.

The image is cached under ``$NESTLAB_CACHE`` (default ``~/.cache/nestlab-cloudlab``)
in a folder named by a hash of the recipe, so only a changed recipe rebuilds it.

Commands: ``image``, ``up NAME``, ``down NAME``, ``reap``, ``list``, ``ssh NAME CMD..``.
Only the standard library is used, so the script runs before the venv exists.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
GUEST_FILES = HERE / "guest"

SUITE = "bookworm"
# Everything the collection installs on a hypervisor is baked in, so the roles' package
# tasks are no-ops in the bed (apt through user-mode NAT is slow).
PACKAGES = [
    "linux-image-cloud-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus",
    "kmod", "procps", "iproute2", "iputils-ping", "ifupdown", "isc-dhcp-client",
    "bridge-utils", "openssh-server", "python3", "python3-apt", "sudo", "lvm2",
    "e2fsprogs", "nftables", "qemu-system-x86", "qemu-utils", "ipxe-qemu", "seabios",
    # iptables-legacy, for the pre-flight's FORWARD-drop case (molecule/site).
    "iptables",
    # host_bridge backends besides ifupdown; NetworkManager is installed disabled.
    "network-manager", "netplan.io",
    # The libvirt backend (molecule/site): libvirtd, virsh, and the Python bindings
    # community.libvirt.virt needs on the host; libvirtd is off until a test starts it.
    "libvirt-daemon-system", "libvirt-daemon-driver-qemu", "libvirt-clients", "python3-libvirt", "python3-lxml",
]
IMAGE_SIZE = "4G"
DATA_DISK_SIZE = "8G"
MGMT_MAC = "52:54:00:a0:00:01"
LAB_MAC = "52:54:00:a0:00:02"
# em1 of the second bed of a LAN (the bridges inherit their NICs' MACs, which must differ);
# the guest's 10-em1.link names a NIC with either MAC em1.
LAN_PEER_MAC = "52:54:00:a0:00:03"
LAB_NETDEV = "user,id=lab,restrict=on,net=10.101.0.0/16,host=10.101.0.1,dhcpstart=10.101.1.25"
LAB_ADDRESS = "10.101.1.25"
SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
]


class BedError(Exception):
    """A failure with a message meant for the person running the tests."""


def cache_root():
    default = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    return pathlib.Path(os.environ.get("NESTLAB_CACHE", default / "nestlab-cloudlab"))


def log(message):
    print(f"testbed: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(path, wait=True):
    """Hold an exclusive lock on PATH; with wait=False yield False if someone holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


def run(argv, **kwargs):
    """Run a command; raise BedError with its output when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise BedError(f"{argv[0]} failed (exit {result.returncode}):\n{output}")
    return result.stdout


# --------------------------------------------------------------------------- image


def debian_mirror():
    """The Debian mirror this machine's apt uses (the guest uses the same one)."""
    if os.environ.get("NESTLAB_MIRROR"):
        return os.environ["NESTLAB_MIRROR"].rstrip("/")
    sources = sorted(pathlib.Path("/etc/apt/sources.list.d").glob("*.sources"))
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    if uri.rstrip("/").endswith("/debian"):
                        return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def check_mirror(mirror):
    url = f"{mirror}/dists/{SUITE}/InRelease"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            response.read(64)
    except (urllib.error.URLError, OSError) as error:
        raise BedError(
            f"cannot reach the Debian mirror {mirror} ({error}); the test-bed image is built "
            f"from it. Set NESTLAB_MIRROR to a reachable mirror, or restore the cached image "
            f"under {cache_root() / 'images'}."
        ) from error


# Services of the bed, set in its image (part of the recipe: a change builds a new image).
SERVICE_COMMANDS = [
    "systemctl enable systemd-networkd",
    # Only the NetworkManager host_bridge scenario turns NetworkManager on.
    "systemctl disable NetworkManager.service NetworkManager-wait-online.service",
    # Nothing a disposable bed needs, and under TCG they cost boot time (e2scrub_reap alone
    # ran 27 s of a 60 s boot) and CPU beside the tests.
    "systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer"
    " fstrim.timer dpkg-db-backup.timer systemd-pstore.service lvm2-monitor.service",
    # libvirt stays off (a host without libvirtd, as most scenarios want) until a test starts
    # it; its default NAT network (virbr0) does not start with it.
    "systemctl disable libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket"
    " virtlogd.socket virtlogd-admin.socket virtlockd.socket virtlockd-admin.socket libvirt-guests.service",
    "rm -f /etc/libvirt/qemu/networks/autostart/default.xml",
]


def recipe_hash(mirror):
    digest = hashlib.sha256()
    recipe = {"suite": SUITE, "packages": PACKAGES, "size": IMAGE_SIZE, "mirror": mirror,
              "mgmt_mac": MGMT_MAC, "lab_mac": LAB_MAC, "lan_peer_mac": LAN_PEER_MAC, "services": SERVICE_COMMANDS, "version": 1}
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    for path in sorted(GUEST_FILES.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(GUEST_FILES)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def apt_candidate(package):
    """The version of PACKAGE apt would download, so that a newer one rebuilds what uses it."""
    policy = run(["apt-cache", "policy", package])
    for line in policy.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return version
    raise BedError(f"{package}: apt knows no candidate version (run apt-get update)")


def apt_extract(package, work):
    """Download PACKAGE's .deb into WORK (from the machine's mirror) and unpack it; its root."""
    work = pathlib.Path(work)
    subprocess.run(["apt-get", "download", "-q", package], cwd=work, check=True, capture_output=True)
    root = work / "x"
    subprocess.run(["dpkg-deb", "-x", str(next(work.glob("*.deb"))), str(root)], check=True)
    return root


def ssh_key():
    """One ed25519 key for every bed, made once and kept in the cache."""
    key = cache_root() / "ssh" / "id_ed25519"
    with locked(cache_root() / "ssh.lock"):
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nestlab-testbed",
                 "-f", str(key)])
    return key


def build_rootfs(rootfs, mirror, public_key):
    hooks = [
        f'cp -a {GUEST_FILES}/rootfs/. "$1"/',
        f'install -d -m 700 "$1"/root/.ssh && install -m 600 {public_key} "$1"/root/.ssh/authorized_keys',
        f'printf "deb {mirror} {SUITE} main\\n" > "$1"/etc/apt/sources.list',
        *(f'chroot "$1" {command}' for command in SERVICE_COMMANDS),
        'chroot "$1" update-initramfs -u -k all',
    ]
    argv = ["mmdebstrap", "--quiet", "--mode=root", "--variant=minbase",
            "--aptopt=APT::Install-Recommends \"false\"",
            f"--include={','.join(PACKAGES)}"]
    argv += [f"--customize-hook={hook}" for hook in hooks]
    argv += [SUITE, str(rootfs), mirror]
    run(argv)


def build_image(target, mirror):
    key = ssh_key()
    work = pathlib.Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        rootfs = work / "rootfs"
        started = time.monotonic()
        log(f"building the L1 image from {mirror} (about 2 minutes, once per recipe)")
        build_rootfs(rootfs, mirror, key.with_suffix(".pub"))
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise BedError("the guest rootfs has no kernel or initrd in /boot")
        shutil.copy(kernels[-1], work / "vmlinuz")
        shutil.copy(initrds[-1], work / "initrd.img")
        raw = work / "root.raw"
        run(["truncate", "-s", IMAGE_SIZE, str(raw)])
        run(["mkfs.ext4", "-q", "-F", "-L", "nestlab-root", "-d", str(rootfs), str(raw)])
        run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "base.qcow2")])
        raw.unlink()
        shutil.rmtree(rootfs)
        work.rename(target)
        log(f"image ready in {time.monotonic() - started:.0f}s: {target}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_image():
    mirror = debian_mirror()
    target = cache_root() / "images" / recipe_hash(mirror)
    with locked(target.with_suffix(".lock")):
        if not (target / "base.qcow2").exists():
            check_mirror(mirror)
            target.parent.mkdir(parents=True, exist_ok=True)
            build_image(target, mirror)
    return target


# ----------------------------------------------------------------------- instances


def instance_dir(name):
    if not name.replace("-", "").replace("_", "").isalnum():
        raise BedError(f"bad bed name {name!r}: use letters, digits, '-' and '_'")
    return cache_root() / "instances" / name


def read_pid(directory):
    try:
        return int((directory / "qemu.pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def is_our_qemu(pid, directory):
    """True when PID is a live qemu started for DIRECTORY (never touch other processes)."""
    try:
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(directory / "overlay.qcow2").encode() in b" ".join(cmdline)


def stop_process(pid, directory):
    if pid is None or not is_our_qemu(pid, directory):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and is_our_qemu(pid, directory):
        time.sleep(0.2)
    if is_our_qemu(pid, directory):
        os.kill(pid, signal.SIGKILL)


def destroy(name):
    directory = instance_dir(name)
    if not directory.exists():
        return False
    stop_process(read_pid(directory), directory)
    logs = cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    serial = directory / "serial.log"
    if serial.exists():
        shutil.copy(serial, logs / f"{name}.serial.log")
    shutil.rmtree(directory, ignore_errors=True)
    return True


def reap():
    """Remove beds whose qemu died or whose lease ran out (left by a killed run)."""
    root = cache_root() / "instances"
    reaped = []
    for directory in sorted(root.iterdir()) if root.exists() else []:
        if not directory.is_dir():
            continue
        # A bed whose lock is held is being booted or destroyed right now: leave it.
        with locked(root / f"{directory.name}.lock", wait=False) as free:
            if not free:
                continue
            try:
                info = json.loads((directory / "instance.json").read_text(encoding="utf-8"))
                expired = info.get("lease_until", 0) < time.time()
            except (OSError, ValueError):
                expired = True
            pid = read_pid(directory)
            if expired or pid is None or not is_our_qemu(pid, directory):
                destroy(directory.name)
                reaped.append(directory.name)
    return reaped


def free_port(kind=socket.SOCK_STREAM):
    """A port of 127.0.0.1 free now (TCP, or UDP with kind=socket.SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lan_link(lan, name):
    """em1's netdev and MAC for bed NAME on virtual LAN LAN: a dgram link to its one peer.

    The LAN's two UDP ports on 127.0.0.1 are chosen by its first bed and kept in
    lans/LAN.json with the beds that joined it; a bed that is no longer up leaves it.
    """
    lans = cache_root() / "lans"
    lans.mkdir(parents=True, exist_ok=True)
    with locked(lans / f"{lan}.lock"):
        path = lans / f"{lan}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        # A bed's folder exists from just before it joins until it is destroyed.
        slots = {member: slot for member, slot in record.get("slots", {}).items()
                 if member != name and instance_dir(member).exists()}
        if len(slots) >= 2:
            raise BedError(f"LAN {lan} already joins two beds ({', '.join(slots)}); a LAN is a link of two")
        ports = record.get("ports") if slots else None
        if not ports:
            ports = [free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)]
        # Slot 0 sends from the first port to the second, slot 1 the other way; the beds'
        # em1 MACs differ by slot (the bridges inherit them).
        slot = 1 if 0 in slots.values() else 0
        path.write_text(json.dumps({"ports": ports, "slots": {**slots, name: slot}}), encoding="utf-8")
    local, remote = ports[slot], ports[1 - slot]
    mac = (LAB_MAC, LAN_PEER_MAC)[slot]
    netdev = ("dgram,id=lab,local.type=inet,local.host=127.0.0.1,local.port=%d,"
              "remote.type=inet,remote.host=127.0.0.1,remote.port=%d" % (local, remote))
    return netdev, mac


def qemu_argv(image, directory, port, lab_port, lan=None):
    accel = os.environ.get("NESTLAB_BED_ACCEL", "tcg")
    cpu = os.environ.get("NESTLAB_BED_CPU", "qemu64,+svm")
    return [
        "qemu-system-x86_64", "-name", f"nestlab-bed,process=nestlab-bed-{directory.name}",
        "-accel", accel, "-cpu", cpu,
        "-smp", os.environ.get("NESTLAB_BED_SMP", "2"),
        "-m", os.environ.get("NESTLAB_BED_MEMORY", "2048"),
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 quiet",
        "-drive", f"file={directory / 'overlay.qcow2'},if=virtio,format=qcow2,cache=unsafe",
        "-drive", f"file={directory / 'data.qcow2'},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC}",
        # SSH also reaches the L1 through em1 (the NIC host_bridge enslaves), so a test
        # can make the controller lose the host the way a real lab would; on a LAN, em1 is
        # the link to the other bed.
        "-netdev", lan[0] if lan else f"{LAB_NETDEV},hostfwd=tcp:127.0.0.1:{lab_port}-{LAB_ADDRESS}:22",
        "-device", f"virtio-net-pci,netdev=lab,mac={lan[1] if lan else LAB_MAC}",
        "-serial", f"file:{directory / 'serial.log'}",
        "-monitor", f"unix:{directory / 'monitor.sock'},server,nowait",
        "-display", "none", "-daemonize", "-pidfile", str(directory / "qemu.pid"),
    ]


def start_qemu(image, directory, lan=None):
    """Start the L1; retry on another port if one was taken between probe and bind."""
    for _attempt in range(5):
        port, lab_port = free_port(), free_port()
        if port == lab_port:
            continue
        result = subprocess.run(qemu_argv(image, directory, port, lab_port, lan),
                                capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return port, lab_port
        if "hostfwd" not in result.stderr and "forwarding" not in result.stderr:
            raise BedError(f"qemu did not start:\n{result.stderr.strip()}")
    raise BedError("qemu could not bind a free SSH port on 127.0.0.1 after 5 tries")


def ssh_argv(info, *command):
    # ConnectTimeout also bounds the SSH banner: a bed booting while another bed works
    # (scenarios in lanes) took over 5 s to send it, and a 5 s limit never let it answer.
    return ["ssh", *SSH_OPTIONS, "-o", "ConnectTimeout=30", "-i", info["identity_file"],
            "-p", str(info["port"]), f"root@{info['address']}", *command]


def serial_tail(directory, lines=40):
    try:
        text = (directory / "serial.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no serial log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_for_ssh(info, directory, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_our_qemu(info["pid"], directory):
            raise BedError("the L1 qemu exited while booting; serial console:\n"
                           + serial_tail(directory))
        try:
            probe = subprocess.run(ssh_argv(info, "true"), capture_output=True, check=False,
                                   timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if probe.returncode == 0:
            return
        time.sleep(2)
    raise BedError(f"no SSH from the L1 within {timeout}s; serial console:\n"
                   + serial_tail(directory))


def up(name, lease_hours, boot_timeout, lan=None):
    image = ensure_image()
    reap()
    directory = instance_dir(name)
    with locked(directory.parent / f"{name}.lock"):
        destroy(name)
        directory.mkdir(parents=True)
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image / "base.qcow2"),
             "-F", "qcow2", str(directory / "overlay.qcow2")])
        run(["qemu-img", "create", "-q", "-f", "qcow2", str(directory / "data.qcow2"),
             DATA_DISK_SIZE])
        started = time.monotonic()
        link = lan_link(lan, name) if lan else None
        port, lab_port = start_qemu(image, directory, link)
        info = {
            "instance": name, "address": "127.0.0.1", "port": port, "lab_port": None if lan else lab_port,
            "lan": lan,
            "user": "root",
            "identity_file": str(ssh_key()), "pid": read_pid(directory),
            "serial_log": str(directory / "serial.log"),
            "lease_until": time.time() + lease_hours * 3600,
        }
        (directory / "instance.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        try:
            wait_for_ssh(info, directory, boot_timeout)
        except BaseException:
            destroy(name)
            raise
        log(f"{name} answers SSH on 127.0.0.1:{port} after {time.monotonic() - started:.0f}s")
        return info


def load(name):
    try:
        return json.loads((instance_dir(name) / "instance.json").read_text(encoding="utf-8"))
    except OSError as error:
        raise BedError(f"no test bed named {name!r} is up") from error


def inventory(info, group):
    host = {
        "ansible_host": info["address"], "ansible_port": info["port"],
        "ansible_user": info["user"], "ansible_ssh_private_key_file": info["identity_file"],
        "ansible_ssh_common_args": " ".join(SSH_OPTIONS),
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    return {"all": {"children": {group: {"hosts": {info["instance"]: host}}}}}


def write_json(path, data):
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("image", help="build or reuse the cached L1 image")
    start = commands.add_parser("up", help="boot a bed (replacing one of the same name)")
    start.add_argument("name")
    start.add_argument("--lease-hours", type=float, default=3.0,
                       help="after this long the next run reaps the bed (default 3)")
    start.add_argument("--boot-timeout", type=int, default=300)
    start.add_argument("--instance-config", help="write molecule's instance_config here")
    start.add_argument("--inventory", help="write an Ansible inventory (YAML) here")
    start.add_argument("--group", default="hypervisors", help="inventory group of the bed")
    start.add_argument("--ssh-via", choices=("mgmt", "lab"), default="mgmt",
                       help="the NIC the written instance config and inventory use for SSH: "
                            "mgmt0 (default) or em1 (lab), which host_bridge reconfigures")
    start.add_argument("--lan", help="join em1 to the other bed of this virtual LAN (two beds a LAN)")
    stop = commands.add_parser("down", help="destroy a bed and its overlay")
    stop.add_argument("name")
    commands.add_parser("reap", help="destroy beds left by killed runs")
    commands.add_parser("list", help="list beds")
    shell = commands.add_parser("ssh", help="run a command in a bed")
    shell.add_argument("name")
    shell.add_argument("remote", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    try:
        if args.command == "image":
            print(ensure_image())
        elif args.command == "up":
            if args.lan and args.ssh_via == "lab":
                raise BedError("--ssh-via lab needs em1 on the user-mode lab network, not on a --lan")
            info = up(args.name, args.lease_hours, args.boot_timeout, args.lan)
            if args.ssh_via == "lab":
                info = {**info, "port": info["lab_port"]}
            if args.instance_config:
                keys = ("instance", "address", "user", "port", "identity_file")
                write_json(args.instance_config, [{key: info[key] for key in keys}])
            if args.inventory:
                write_json(args.inventory, inventory(info, args.group))
            print(json.dumps(info))
        elif args.command == "down":
            with locked(cache_root() / "instances" / f"{args.name}.lock"):
                log(f"{args.name} destroyed" if destroy(args.name) else f"{args.name} was not up")
        elif args.command == "reap":
            for name in reap():
                log(f"reaped {name}")
        elif args.command == "list":
            root = cache_root() / "instances"
            for directory in sorted(root.iterdir()) if root.exists() else []:
                if directory.is_dir():
                    print(directory.name, json.dumps(load(directory.name)))
        elif args.command == "ssh":
            return subprocess.call(ssh_argv(load(args.name), *args.remote))
    except BedError as error:
        print(f"testbed: ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
