# Nomad SERVER agent configuration, not a job: merge into the servers' agent
# config (e.g. /etc/nomad.d/server.hcl) and restart the servers one at a time.
#
# Why: when a node is drained or lost, the CSI volume claims of its
# allocations are released by the claim GC. At the default interval ("5m") a
# volume the scheduler wants to place elsewhere stays claimed for minutes,
# which is exactly the window in which operators start forcing things. One
# minute keeps a moved workload's volume free soon after the old claim is gone.
server {
  csi_volume_claim_gc_interval = "1m"
  # Left at its default ("1h") on purpose: it is how old a claim must be
  # before a full GC removes it, not how often unused claims are released.
  # csi_volume_claim_gc_threshold = "1h"
}
