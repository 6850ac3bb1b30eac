# PID 1 of a testbed VM (testbed::vm), run by busybox's sh (testbed::vm
# puts the `#!` line with busybox's path before this): mounts what
# the tests expect, loads the modules listed in /etc/testbed/modules,
# brings up lo, runs /etc/testbed/run (the command, between the run's
# start and exit markers) and powers off. The kernel's `panic=-1` with
# qemu's `-no-reboot` ends the VM also if this script dies.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# tmpfs on /tmp and /run, with what the initramfs put there copied in
# (an executable may live under /tmp on the host, and so in the guest).
mkdir /.tmpfs
for dir in /tmp /run; do
    mount -t tmpfs tmpfs /.tmpfs
    cp -a "$dir/." /.tmpfs/
    mount -o move /.tmpfs "$dir"
done
rmdir /.tmpfs
while read -r module; do
    insmod "$module" || echo "testbed-vm: insmod $module failed"
done </etc/testbed/modules
ip link set lo up
. /etc/testbed/run
poweroff -f
