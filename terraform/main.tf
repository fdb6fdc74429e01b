# The job files in ../jobs stay usable with plain `nomad job run -var ...`;
# this module only feeds them values. hcl2 vars are strings, parsed like
# -var on the command line, so lists go in as JSON and numbers as text.

locals {
  jobs_dir = "${path.module}/../jobs"

  release_vars = {
    release_base_url = var.release_base_url
    writ_version     = var.writ_version
  }

  # One namespace block per managed namespace, with the capabilities given.
  runner_namespace_rules = join("\n", [
    for ns in var.managed_namespaces : "namespace \"${ns}\" {\n  capabilities = ${jsonencode(["read-job", "alloc-lifecycle"])}\n}"
  ])
}

# ---------------------------------------------------------------------------
# Namespaces: raw_exec (the runner, a host agent) only in writ's own.
# ---------------------------------------------------------------------------

resource "nomad_namespace" "writ" {
  name        = var.namespace
  description = "writ: NATS, control plane, node runner (raw_exec host agent), democratic-csi node plugin, multipath watchdog."

  capabilities {
    # raw_exec must be enabled on the clients for the runner; it is allowed
    # in this namespace and nowhere else (see raw_exec_denied below).
    enabled_task_drivers = ["docker", "exec", "raw_exec"]
  }
}

# The client setting that enables raw_exec is client-wide: every namespace
# that does not refuse it could run a root process on every client. Nomad
# checks these capabilities at job submission.
resource "nomad_namespace" "raw_exec_denied" {
  for_each    = toset(var.raw_exec_denied_namespaces)
  name        = each.value
  description = each.value == "default" ? "Default shared namespace" : "raw_exec disabled by the writ module"

  capabilities {
    disabled_task_drivers = ["raw_exec"]
  }

  lifecycle {
    precondition {
      condition     = each.value != var.namespace
      error_message = "raw_exec_denied_namespaces must not contain the writ namespace (${var.namespace}): the runner needs raw_exec there."
    }
  }
}

# ---------------------------------------------------------------------------
# ACL: each daemon gets only what its actions call.
# ---------------------------------------------------------------------------

# Attached to the runner job: every runner allocation's workload identity
# carries it, over the Task API socket, and loses it when the allocation
# stops. Nomad cannot scope node write to one node or alloc-lifecycle to the
# allocations on one node: the runner enforces that itself (README "The
# runner as a host agent").
resource "nomad_acl_policy" "node_runner" {
  name        = "writ-node-runner"
  description = "writ node runner (workload identity): stop/read allocations (nomad.alloc_stop, alloc_status, node_allocs), drain and eligibility (node write)."
  # read-job: GET /v1/allocation/:id and /v1/node/:id/allocations, and the
  # runner's own NodeID check before any alloc_* action.
  # alloc-lifecycle: POST /v1/allocation/:id/stop.
  # node write: POST /v1/node/:id/drain and /eligibility (write includes read
  # for GET /v1/node/:id).
  rules_hcl = <<-EOT
    ${local.runner_namespace_rules}
    node {
      policy = "write"
    }
  EOT

  job_acl {
    namespace = nomad_namespace.writ.name
    job_id    = "writ-node-runner"
  }
}

# Attached to the control-plane job, like the runner's: its only Nomad call
# is GET /v1/nodes (the node attributes policy matches on). Impact previews
# are read actions run by the runners, with their own identities. No
# long-lived token exists, so none sits in Terraform state.
resource "nomad_acl_policy" "control_plane" {
  name        = "writ-control-plane"
  description = "writ control plane (workload identity): GET /v1/nodes, the node attributes policy matches on."
  rules_hcl   = <<-EOT
    node {
      policy = "read"
    }
  EOT

  job_acl {
    namespace = nomad_namespace.writ.name
    job_id    = "writ-control-plane"
  }
}

# ---------------------------------------------------------------------------
# Secrets: Nomad Variables under nomad/jobs/<job>, which each job's workload
# identity may read (in the writ namespace) and nothing else does without an
# operator ACL.
# ---------------------------------------------------------------------------

# The approver registry and its public key, for both jobs; absent while
# passkey approvals are off (the jobs' templates then switch them off).
locals {
  approver_items = var.approver_registry_json == "" ? {} : {
    approver_registry = var.approver_registry_json
    approvers_key_pem = var.approvers_public_key_pem
  }
}

resource "nomad_variable" "control_plane" {
  namespace = nomad_namespace.writ.name
  path      = "nomad/jobs/writ-control-plane"
  items = merge({
    signing_key_pem    = var.signing_key_pem
    slack_webhook_url  = var.slack_webhook_url
    portal_session_key = var.portal_session_key_hex
    principals_yaml    = var.principals_yaml
    nats_creds         = var.control_plane_nats_creds
    # NATS is TLS only; the job points WRIT_NATS_CA and WRIT_NATS_TLS_SERVER_NAME at these.
    nats_ca_pem          = var.nats_tls_ca_pem
    nats_tls_server_name = var.nats_tls_server_name
    }, var.nomad_ca_cert_pem == "" ? {} : {
    # The job sets NOMAD_CACERT only when this item is there.
    nomad_ca_pem = var.nomad_ca_cert_pem
    }, var.nomad_client_cert_pem == "" ? {} : {
    # And NOMAD_CLIENT_CERT / NOMAD_CLIENT_KEY only when these are.
    nomad_client_cert_pem = var.nomad_client_cert_pem
    nomad_client_key_pem  = var.nomad_client_key_pem
  }, local.approver_items)

  lifecycle {
    precondition {
      condition     = (var.nomad_client_cert_pem == "") == (var.nomad_client_key_pem == "")
      error_message = "Set nomad_client_cert_pem and nomad_client_key_pem together (or neither)."
    }
    precondition {
      condition     = startswith(var.nomad_addr, "https://") || (var.nomad_ca_cert_pem == "" && var.nomad_client_cert_pem == "" && var.nomad_tls_server_name == "")
      error_message = "nomad_ca_cert_pem, nomad_client_cert_pem and nomad_tls_server_name are TLS settings: they need an https:// nomad_addr (the control plane refuses them with http://)."
    }
  }
}

resource "nomad_variable" "node_runner" {
  namespace = nomad_namespace.writ.name
  path      = "nomad/jobs/writ-node-runner"
  items = merge({
    trusted_keys_pem     = var.trusted_public_keys_pem
    nats_ca_pem          = var.nats_tls_ca_pem
    nats_tls_server_name = var.nats_tls_server_name
  }, local.approver_items)

  lifecycle {
    precondition {
      condition     = (var.approver_registry_json == "") == (var.approvers_public_key_pem == "")
      error_message = "Set approver_registry_json and approvers_public_key_pem together (or neither)."
    }
    precondition {
      condition     = var.approvers_public_key_pem == "" || !strcontains(var.trusted_public_keys_pem, trimspace(var.approvers_public_key_pem))
      error_message = "approvers_public_key_pem is one of trusted_public_keys_pem: the approver registry must be signed with a separate key, never the dispatch key."
    }
  }
}

resource "nomad_variable" "nats" {
  namespace = nomad_namespace.writ.name
  path      = "nomad/jobs/writ-nats"
  items = {
    operator_jwt              = trimspace(var.nats_operator_jwt)
    system_account_public_key = var.nats_system_account.public_key
    system_account_jwt        = trimspace(var.nats_system_account.jwt)
    writ_account_public_key   = var.nats_writ_account.public_key
    writ_account_jwt          = trimspace(var.nats_writ_account.jwt)
    cluster_route_password    = var.nats_route_password
    tls_ca_pem                = var.nats_tls_ca_pem
    tls_cert_pem              = var.nats_tls_cert_pem
    tls_key_pem               = var.nats_tls_key_pem
  }
}

# ---------------------------------------------------------------------------
# Jobs
#
# Every job: purge_on_destroy, because the provider deregisters without purge
# by default and Nomad refuses to delete a namespace that still holds jobs,
# so the first `terraform destroy` failed on nomad_namespace.writ; and
# detach = false, so an apply waits for each deployment to succeed (NATS is
# healthy before the jobs that connect to it start, and a failed rollout
# fails the apply instead of reporting success).
# ---------------------------------------------------------------------------

resource "nomad_job" "nats" {
  jobspec = file("${local.jobs_dir}/nats.nomad.hcl")

  purge_on_destroy = true
  detach           = false

  # One server at a time (3 or 5), each up to its 5m healthy_deadline: the provider's
  # default 5m would fail a slow but healthy rolling update.
  timeouts {
    create = "30m"
    update = "30m"
  }

  hcl2 {
    vars = {
      namespace        = nomad_namespace.writ.name
      datacenters      = jsonencode(var.datacenters)
      node_pool        = var.node_pool
      server_count     = tostring(var.nats_server_count)
      data_host_volume = var.nats_data_host_volume
    }
  }

  depends_on = [nomad_variable.nats]
}

locals {
  # MCP authorization's settings reach the job as one JSON object (YAML reads JSON); empty leaves it off.
  mcp_oauth_json = var.mcp_oauth == null ? "" : jsonencode(var.mcp_oauth)
}

resource "nomad_job" "control_plane" {
  jobspec = file("${local.jobs_dir}/writ-control-plane.nomad.hcl")

  purge_on_destroy = true
  detach           = false

  # One instance at a time, each up to its 3m healthy_deadline.
  timeouts {
    create = "10m"
    update = "10m"
  }

  hcl2 {
    vars = merge(local.release_vars, {
      namespace             = nomad_namespace.writ.name
      datacenters           = jsonencode(var.datacenters)
      node_pool             = var.node_pool
      instance_count        = tostring(var.control_plane_count)
      control_plane_sha256  = var.control_plane_sha256
      packs_sha256          = var.packs_sha256
      public_url            = var.control_plane_public_url
      jetstream_replicas    = tostring(var.nats_server_count >= 3 ? 3 : 1)
      policy_yaml           = var.policy_yaml
      oauth_json            = local.mcp_oauth_json
      nomad_addr            = var.nomad_addr
      nomad_tls_server_name = var.nomad_tls_server_name
    })
  }

  depends_on = [nomad_variable.control_plane, nomad_acl_policy.control_plane, nomad_job.nats]
}

resource "nomad_job" "node_runner" {
  jobspec = file("${local.jobs_dir}/writ-node-runner.nomad.hcl")

  purge_on_destroy = true
  detach           = false

  hcl2 {
    vars = merge(local.release_vars, {
      namespace            = nomad_namespace.writ.name
      datacenters          = jsonencode(var.datacenters)
      node_pool            = var.system_node_pool
      runner_sha256        = var.runner_sha256
      packs_sha256         = var.packs_sha256
      nats_creds_host_path = var.runner_nats_creds_host_path
      nomad_data_dir       = var.nomad_data_dir
    })
  }

  depends_on = [nomad_variable.node_runner, nomad_acl_policy.node_runner, nomad_job.nats]
}

resource "nomad_job" "democratic_csi_node" {
  count   = var.deploy_csi_node_plugin ? 1 : 0
  jobspec = file("${local.jobs_dir}/democratic-csi-node.nomad.hcl")

  purge_on_destroy = true
  detach           = false

  hcl2 {
    vars = {
      namespace                   = nomad_namespace.writ.name
      datacenters                 = jsonencode(var.datacenters)
      node_pool                   = var.system_node_pool
      image                       = var.csi_image
      plugin_id                   = var.csi_plugin_id
      driver_config_yaml          = var.csi_driver_config_yaml
      mkfs_guard_script           = file("${local.jobs_dir}/scripts/mkfs-guard.sh")
      blank_proof_lib             = file("${local.jobs_dir}/scripts/lib/blank-proof.sh")
      mkfs_allow_list_host_path   = var.mkfs_allow_list_host_path
      allowed_filesystems         = jsonencode(var.mkfs_allowed_filesystems)
      blank_proof_timeout_seconds = tostring(var.blank_proof_timeout_seconds)
    }
  }
}

resource "nomad_job" "multipath_watchdog" {
  count   = var.deploy_multipath_watchdog ? 1 : 0
  jobspec = file("${local.jobs_dir}/multipath-watchdog.nomad.hcl")

  purge_on_destroy = true
  detach           = false

  hcl2 {
    vars = merge(local.release_vars, {
      namespace            = nomad_namespace.writ.name
      datacenters          = jsonencode(var.datacenters)
      node_pool            = var.system_node_pool
      runner_sha256        = var.runner_sha256
      host_tool_script     = file("${local.jobs_dir}/scripts/host-tool.sh")
      interval             = var.watchdog_interval
      textfile_dir         = var.node_exporter_textfile_dir
      nats_creds_host_path = var.runner_nats_creds_host_path
      nats_ca_pem          = var.nats_tls_ca_pem
      nats_tls_server_name = var.nats_tls_server_name
    })
  }

  depends_on = [nomad_job.nats]
}
