output "control_plane_url" {
  description = "Where operators and agents reach the control plane (MCP at /mcp, REST under /v1, portal under /ui)."
  value       = var.control_plane_public_url
}

output "control_plane_service" {
  description = "Nomad service name of the control-plane instances, for a load balancer or ingress to discover."
  value       = "writ-control-plane"
}

output "namespace" {
  description = "The Nomad namespace every writ job runs in (the only one where raw_exec is allowed)."
  value       = nomad_namespace.writ.name
}

output "node_runner_policy" {
  description = "ACL policy attached to the writ-node-runner job; each runner allocation's workload identity carries it (no long-lived runner token exists)."
  value       = nomad_acl_policy.node_runner.name
}

output "control_plane_policy" {
  description = "ACL policy attached to the writ-control-plane job (node read); each control-plane allocation's workload identity carries it (no long-lived control-plane token exists)."
  value       = nomad_acl_policy.control_plane.name
}

output "job_ids" {
  description = "IDs of the Nomad jobs this module deployed."
  value = compact([
    nomad_job.nats.id,
    nomad_job.control_plane.id,
    nomad_job.node_runner.id,
    one(nomad_job.democratic_csi_node[*].id),
    one(nomad_job.multipath_watchdog[*].id),
  ])
}

output "alert_rules" {
  description = "Prometheus / vmalert rule files, name => YAML, rendered with the alert_* thresholds: writ.yaml (writ's own health) and, with the watchdog deployed, multipath.yaml. Write them where your Prometheus or vmalert reads rules (README \"Alerts\")."
  value       = local.alert_rules
}
