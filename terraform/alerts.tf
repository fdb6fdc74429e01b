# Alert rules for writ's own health (alerts/writ.yaml) and the multipath
# watchdog (alerts/multipath.yaml), rendered with this module's thresholds
# and handed out as the output `alert_rules` for Prometheus or vmalert to
# load (README "Alerts"). The thresholds live here rather than in
# variables.tf: they are one concern, and that file is long enough.

variable "alert_runbook_url" {
  description = "Where your people read docs/operations.md of the writ version you deploy (e.g. your git host's view of it, https://git.example.internal/platform/writ/-/blob/v0.1.0/docs/operations.md). Every alert's runbook_url is this plus the alert's section anchor (#writrunnerheartbeatmissing)."
  type        = string

  validation {
    condition     = can(regex("^https?://[^\\s#]+$", var.alert_runbook_url))
    error_message = "alert_runbook_url must be an http(s) URL without a #fragment (each alert adds its own section anchor)."
  }
}

variable "alert_runner_heartbeat_stale_seconds" {
  description = "Seconds without a heartbeat (runners send one every 5 s) after which a runner counts as quiet: WritRunnerHeartbeatMissing per node, WritRunnersQuietFleetwide for the share of the fleet."
  type        = number
  default     = 120

  validation {
    condition     = var.alert_runner_heartbeat_stale_seconds >= 30 && floor(var.alert_runner_heartbeat_stale_seconds) == var.alert_runner_heartbeat_stale_seconds
    error_message = "alert_runner_heartbeat_stale_seconds must be a whole number of at least 30 (a runner restart takes several heartbeats)."
  }
}

variable "alert_runner_quiet_fleet_percent" {
  description = "WritRunnersQuietFleetwide pages when more than this percentage of the runners the control planes know are quiet."
  type        = number
  default     = 10

  validation {
    condition     = var.alert_runner_quiet_fleet_percent > 0 && var.alert_runner_quiet_fleet_percent < 100
    error_message = "alert_runner_quiet_fleet_percent must be between 0 and 100 (exclusive)."
  }
}

variable "alert_runner_refusal_codes" {
  description = "Runner refusal codes that mean someone other than the control plane is sending writs (forged, replayed, redirected or with made-up approvals); WritRunnerRefusalsSuspicious pages on them. Leave out codes that a misconfiguration of your own causes routinely."
  type        = list(string)
  default     = ["malformed", "bad_signature", "unknown_key", "wrong_node", "replayed", "bad_approval", "passkey_required", "bad_passkey", "unknown_approver", "self_approval", "bad_plan", "not_in_plan", "bad_grant"]

  validation {
    condition = length(var.alert_runner_refusal_codes) > 0 && alltrue([for c in var.alert_runner_refusal_codes : contains([
      "malformed", "bad_signature", "unknown_key", "wrong_node", "expired", "not_yet_valid",
      "unknown_action", "digest_mismatch", "bad_args", "replayed", "draining", "shell_not_allowed",
      "target_unavailable", "journal_unavailable", "bad_approval", "not_local", "lifetime_too_long",
      "passkey_required", "bad_passkey", "unknown_approver", "self_approval", "quorum_not_met", "registry_expired",
      "not_in_plan", "bad_plan", "bad_grant", "grant_expired", "grant_used_up", "state_changed",
    ], c)])
    error_message = "alert_runner_refusal_codes must name at least one runner refusal code (packs/src/protocol/messages.ts RefusalCodeSchema)."
  }
}

variable "alert_runner_refusals_per_10m" {
  description = "WritRunnerRefusalsSuspicious pages when the fleet refuses at least this many writs with one of alert_runner_refusal_codes in 10 minutes (1: any)."
  type        = number
  default     = 1

  validation {
    condition     = var.alert_runner_refusals_per_10m >= 1
    error_message = "alert_runner_refusals_per_10m must be at least 1."
  }
}

variable "alert_audit_checkpoint_max_age_seconds" {
  description = "WritAuditCheckpointStale pages when no control plane has found the audit chain covered by a signed checkpoint (or appended one) for this long. Control planes look every audit.checkpoint_interval (default 5s)."
  type        = number
  default     = 300

  validation {
    condition     = var.alert_audit_checkpoint_max_age_seconds >= 60
    error_message = "alert_audit_checkpoint_max_age_seconds must be at least 60."
  }
}

variable "alert_audit_verify_max_age_hours" {
  description = "WritAuditVerifyStale warns when a scheduled `writ audit verify --metrics-textfile` has not finished for this many hours (26 suits a daily schedule)."
  type        = number
  default     = 26

  validation {
    condition     = var.alert_audit_verify_max_age_hours >= 1
    error_message = "alert_audit_verify_max_age_hours must be at least 1."
  }
}

variable "alert_approvals_expired_per_hour" {
  description = "WritApprovalsExpired warns when at least this many runs expired waiting for an approval within an hour (1: any)."
  type        = number
  default     = 1

  validation {
    condition     = var.alert_approvals_expired_per_hour >= 1
    error_message = "alert_approvals_expired_per_hour must be at least 1."
  }
}

variable "alert_approval_wait_p95_seconds" {
  description = "WritApprovalWaitHigh warns when the 95th percentile of the wait for a decision over the last hour exceeds this many seconds (policy's default approval window is 15 minutes)."
  type        = number
  default     = 600

  validation {
    condition     = var.alert_approval_wait_p95_seconds > 0
    error_message = "alert_approval_wait_p95_seconds must be positive."
  }
}

variable "alert_slack_post_failures_per_15m" {
  description = "WritSlackPostsFailing warns when at least this many posts to the Slack webhook fail with a server error or no answer within 15 minutes (each is retried; a dropped notice alerts on its own)."
  type        = number
  default     = 3

  validation {
    condition     = var.alert_slack_post_failures_per_15m >= 1
    error_message = "alert_slack_post_failures_per_15m must be at least 1."
  }
}

variable "alert_jetstream_usage_percent" {
  description = "WritJetStreamStreamNearLimit and WritJetStreamAccountNearLimit warn above this percentage of a stream's own limit, or of the WRIT account's file storage."
  type        = number
  default     = 80

  validation {
    condition     = var.alert_jetstream_usage_percent > 0 && var.alert_jetstream_usage_percent < 100
    error_message = "alert_jetstream_usage_percent must be between 0 and 100 (exclusive)."
  }
}

locals {
  # The ${...} names in alerts/writ.yaml, one for one.
  alert_thresholds = {
    runbook_url                      = var.alert_runbook_url
    control_plane_count              = var.control_plane_count
    runner_heartbeat_stale_seconds   = var.alert_runner_heartbeat_stale_seconds
    runner_quiet_fleet_percent       = var.alert_runner_quiet_fleet_percent
    runner_refusal_codes             = join("|", var.alert_runner_refusal_codes)
    runner_refusals_per_10m          = var.alert_runner_refusals_per_10m
    audit_checkpoint_max_age_seconds = var.alert_audit_checkpoint_max_age_seconds
    audit_verify_max_age_hours       = var.alert_audit_verify_max_age_hours
    approvals_expired_per_hour       = var.alert_approvals_expired_per_hour
    approval_wait_p95_seconds        = var.alert_approval_wait_p95_seconds
    slack_post_failures_per_15m      = var.alert_slack_post_failures_per_15m
    jetstream_usage_percent          = var.alert_jetstream_usage_percent
  }

  alert_rules = merge(
    { "writ.yaml" = templatefile("${path.module}/alerts/writ.yaml", local.alert_thresholds) },
    var.deploy_multipath_watchdog ? { "multipath.yaml" = templatefile("${path.module}/alerts/multipath.yaml", { runbook_url = var.alert_runbook_url }) } : {},
  )
}
