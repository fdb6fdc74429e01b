# Nomad SERVER agent configuration, not a job: merge into the servers' agent
# config (e.g. /etc/nomad.d/server.hcl) and restart the servers one at a time.
# No job can set it; terraform/README.md ("Before the first apply") names it.
#
# Why: a CSI volume stays claimed by an allocation until the claim is
# released. The servers' volume watcher releases it when the allocation
# stops; when that fails (a lost node cannot unpublish, a plugin call
# errors), the periodic claim GC retries it. At Nomad's default interval
# ("5m") a volume the scheduler wants to place elsewhere can stay claimed for
# minutes after a drain, exactly the window in which operators start forcing
# things. One minute frees it soon after the old claim is gone.
server {
  csi_volume_claim_gc_interval = "1m"

  # csi_volume_claim_gc_threshold stays at Nomad's default ("5m"): the GC
  # skips volumes registered more recently than that; it does not delay
  # releasing the claims of an older volume.
}
