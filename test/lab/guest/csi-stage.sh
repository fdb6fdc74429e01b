#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# csi-stage.sh DEVICE — what a CSI node plugin does in NodeStageVolume for a
# block volume with a filesystem: probe it with `blkid -p -o export`; exit 2
# means "no filesystem" (democratic-csi's blkid strategy, kubernetes
# mount-utils), so format it with mkfs.ext4 -F -m0 (mount-utils' arguments);
# exit 0 means mount it as it is. The bug class of kubernetes#95183: exit 2
# is also what a probe of a device that did not answer returns.
# mkfs.ext4 is whatever comes first on PATH: the real one, or writ's guard.
# shellcheck source=lab-lib.sh
. /lab/lab-lib.sh
dev=$1
probe=$(blkid -p -o export "$dev" 2>/tmp/csi-probe.err)
rc=$?
lab_result csi_probe rc "$rc" output "$probe" stderr "$(cat /tmp/csi-probe.err)"
# The lab's hold (CSI_STAGE_HOLD, a FIFO; never set outside the lab): the
# routine says it has probed and waits to be let go on. A plugin goes
# straight from its probe to what it decides; the scenario needs the map in
# a known state for each of the two steps (queueing off while the probe
# reads, on again before the format writes), and a hold orders that where
# timing cannot.
if [ -n "${CSI_STAGE_HOLD:-}" ]; then
  : >"$CSI_STAGE_HOLD.probed"
  read -r _ <"$CSI_STAGE_HOLD"
fi
case "$rc" in
  0)
    lab_result csi_decision action mount
    ;;
  2)
    lab_result csi_decision action format mkfs "$(command -v mkfs.ext4)"
    started=$(lab_uptime)
    mkfs.ext4 -F -m0 "$dev" >/tmp/csi-mkfs.out 2>&1
    mrc=$?
    lab_result csi_mkfs rc "$mrc" started "$started" ended "$(lab_uptime)" output "$(tail -n 5 /tmp/csi-mkfs.out)"
    ;;
  *)
    lab_result csi_decision action fail
    ;;
esac
lab_result csi_done
