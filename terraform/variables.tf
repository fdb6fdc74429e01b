# ---------------------------------------------------------------------------
# Placement
# ---------------------------------------------------------------------------

variable "datacenters" {
  description = "Nomad datacenters every writ job may run in."
  type        = list(string)
  default     = ["dc1"]

  validation {
    condition     = length(var.datacenters) > 0
    error_message = "At least one datacenter is needed."
  }
}

variable "node_pool" {
  description = "Node pool for the service jobs (NATS, control plane)."
  type        = string
  default     = "default"
}

variable "system_node_pool" {
  description = "Node pool whose clients get the system jobs (runner, CSI node plugin, multipath watchdog); \"all\" for every pool."
  type        = string
  default     = "all"
}

variable "namespace" {
  description = "Nomad namespace the module creates for every writ job; the only namespace whose capabilities allow raw_exec (the node runner)."
  type        = string
  default     = "writ"

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,128}$", var.namespace)) && var.namespace != "default"
    error_message = "namespace must be a Nomad namespace name other than \"default\" (raw_exec is enabled only in writ's own namespace)."
  }
}

variable "raw_exec_denied_namespaces" {
  description = "Namespaces whose capabilities this module sets to refuse raw_exec (it overwrites their description and capabilities). raw_exec is enabled client-wide for the runner, so every namespace that does not refuse it can run root processes on every client; list them all here, or set disabled_task_drivers yourself and pass []."
  type        = list(string)
  default     = ["default"]

  validation {
    condition     = alltrue([for ns in var.raw_exec_denied_namespaces : can(regex("^[a-zA-Z0-9-]{1,128}$", ns))])
    error_message = "Each entry must be a Nomad namespace name."
  }
}

variable "managed_namespaces" {
  description = "Nomad namespaces whose allocations the runner may read and stop. [\"*\"] means all."
  type        = list(string)
  default     = ["default"]

  validation {
    condition     = length(var.managed_namespaces) > 0 && alltrue([for ns in var.managed_namespaces : can(regex("^([a-zA-Z0-9-]{1,128}|\\*)$", ns))])
    error_message = "Each namespace must be a Nomad namespace name or \"*\"."
  }
}

# ---------------------------------------------------------------------------
# Release artifacts
# ---------------------------------------------------------------------------

variable "release_base_url" {
  description = "Base URL of the writ release artifacts: <base>/v<version>/writ-linux-x64, writ-node-runner-linux-x64, writ-packs-<version>.tar.gz."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s]+[^/]$", var.release_base_url))
    error_message = "release_base_url must be an https:// URL without a trailing slash (checksums protect the bytes, TLS protects which release you get)."
  }
}

variable "writ_version" {
  description = "writ release version, without the leading v (e.g. 0.1.0)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z.-]+)?$", var.writ_version))
    error_message = "writ_version must be a semantic version such as 0.1.0 (no leading v)."
  }
}

variable "control_plane_sha256" {
  description = "SHA-256 (hex) of writ-linux-x64 for writ_version, from the release's SHA256SUMS."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.control_plane_sha256))
    error_message = "control_plane_sha256 must be 64 lower-case hex characters."
  }
}

variable "runner_sha256" {
  description = "SHA-256 (hex) of writ-node-runner-linux-x64 for writ_version (also runs the multipath watchdog)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.runner_sha256))
    error_message = "runner_sha256 must be 64 lower-case hex characters."
  }
}

variable "packs_sha256" {
  description = "SHA-256 (hex) of writ-packs-<version>.tar.gz; control plane and runners load these same bytes."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.packs_sha256))
    error_message = "packs_sha256 must be 64 lower-case hex characters."
  }
}

# ---------------------------------------------------------------------------
# Control plane
# ---------------------------------------------------------------------------

variable "control_plane_public_url" {
  description = "URL operators and agents reach the control plane at; approval links point here."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s]+$", var.control_plane_public_url))
    error_message = "control_plane_public_url must be an https:// URL: approvals carry session cookies."
  }
}

variable "control_plane_count" {
  description = "Control-plane instances (stateless; at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.control_plane_count >= 2 && floor(var.control_plane_count) == var.control_plane_count
    error_message = "control_plane_count must be a whole number of at least 2."
  }
}

variable "nomad_addr" {
  description = "Nomad HTTP API address the control plane uses (NOMAD_ADDR), scheme included. https on a cluster with TLS, with nomad_ca_cert_pem; http only on a cluster without TLS. The runners use their Task API socket instead."
  type        = string
  default     = "https://127.0.0.1:4646"

  validation {
    condition     = can(regex("^https?://[^\\s/]+(:[0-9]+)?$", var.nomad_addr))
    error_message = "nomad_addr must be http(s)://host[:port] with no path."
  }
}

variable "nomad_ca_cert_pem" {
  description = "PEM CA certificate of the Nomad agents' https certificates (the control plane's NOMAD_CACERT); empty to use the system CAs."
  type        = string
  default     = ""

  validation {
    condition     = var.nomad_ca_cert_pem == "" || (can(regex("-----BEGIN CERTIFICATE-----", var.nomad_ca_cert_pem)) && !can(regex("PRIVATE KEY", var.nomad_ca_cert_pem)))
    error_message = "nomad_ca_cert_pem must be empty or PEM certificates only (never a private key)."
  }
}

variable "nomad_client_cert_pem" {
  description = "PEM client certificate the control plane presents to Nomad agents with tls { verify_https_client = true } (its NOMAD_CLIENT_CERT), e.g. from `nomad tls cert create -cli`; empty when the agents ask for none."
  type        = string
  default     = ""

  validation {
    condition     = var.nomad_client_cert_pem == "" || (can(regex("-----BEGIN CERTIFICATE-----", var.nomad_client_cert_pem)) && !can(regex("PRIVATE KEY", var.nomad_client_cert_pem)))
    error_message = "nomad_client_cert_pem must be empty or PEM certificates only (the key goes into nomad_client_key_pem)."
  }
}

variable "nomad_client_key_pem" {
  description = "PEM private key of nomad_client_cert_pem (the control plane's NOMAD_CLIENT_KEY). Stored only in the control plane's Nomad Variable, readable by its task user alone."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = var.nomad_client_key_pem == "" || can(regex("-----BEGIN [A-Z ]*PRIVATE KEY-----", var.nomad_client_key_pem))
    error_message = "nomad_client_key_pem must be empty or a PEM private key."
  }
}

variable "nomad_tls_server_name" {
  description = "Name on the agents' https certificates when nomad_addr's host is not on them (NOMAD_TLS_SERVER_NAME), e.g. client.global.nomad; empty for none."
  type        = string
  default     = ""
}

variable "policy_yaml" {
  description = "Policy rules as YAML (a top-level `rules:` list); reviewed like code, not secret."
  type        = string
  default     = "rules: []\n"
}

variable "mcp_oauth" {
  description = "MCP authorization (OAuth) for /mcp: the control plane's `oauth` settings, e.g. { dynamic_registration = true, client_metadata_documents = { allowed_hosts = [\"claude.ai\"] } }; null leaves it off. Who may connect as which agent is each agent principal's `oauth` (in principals_yaml)."
  type        = any
  default     = null
  validation {
    condition     = var.mcp_oauth == null || can(keys(var.mcp_oauth))
    error_message = "mcp_oauth is an object of oauth settings (or null)."
  }
}

variable "signing_key_pem" {
  description = "Ed25519 private key (PKCS#8 PEM) the control plane signs writs with (`writ keys generate`). Stored only in a Nomad Variable."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("-----BEGIN PRIVATE KEY-----", var.signing_key_pem))
    error_message = "signing_key_pem must be a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)."
  }
}

variable "trusted_public_keys_pem" {
  description = "PEM public key(s) the runners accept writs from: the current signing key's, plus the next one during a rotation."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN PUBLIC KEY-----", var.trusted_public_keys_pem)) && !can(regex("PRIVATE KEY", var.trusted_public_keys_pem))
    error_message = "trusted_public_keys_pem must hold PEM public keys only (never a private key)."
  }
}

variable "portal_session_key_hex" {
  description = "Key of the portal's encrypted session cookie: 32 random bytes as 64 hex characters (`writ keys session --out FILE`, or `openssl rand -hex 32`). Every control-plane instance shares it; changing it signs every operator out."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[0-9a-fA-F]{64}$", var.portal_session_key_hex))
    error_message = "portal_session_key_hex must be 64 hexadecimal characters (32 bytes)."
  }
}

variable "approver_registry_json" {
  description = "The signed approver registry, exactly as `writ approvers export` wrote it. With approvers_public_key_pem set, runners refuse risky actions without passkey-signed approvals and the portal asks for them. Empty (the default) leaves passkey approvals off. Publishing a new registry changes only this value: runners and control planes reload the file without a restart."
  type        = string
  default     = ""

  validation {
    condition     = var.approver_registry_json == "" || try(jsondecode(var.approver_registry_json).registry.kind == "writ.approver-registry", false)
    error_message = "approver_registry_json must be the JSON file writ approvers export writes (registry.kind \"writ.approver-registry\"), or empty."
  }
}

variable "approvers_public_key_pem" {
  description = "PEM public key(s) of the approvers key that signs the approver registry (`writ keys approvers`). Never the dispatch key: runners refuse a registry it signed. The private key stays offline with the administrator."
  type        = string
  default     = ""

  validation {
    condition     = var.approvers_public_key_pem == "" || (can(regex("-----BEGIN PUBLIC KEY-----", var.approvers_public_key_pem)) && !can(regex("PRIVATE KEY", var.approvers_public_key_pem)))
    error_message = "approvers_public_key_pem must hold PEM public keys only (never a private key), or be empty."
  }
}

variable "slack_webhook_url" {
  description = "Slack incoming-webhook URL for approval requests."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^https://hooks\\.slack\\.com/", var.slack_webhook_url))
    error_message = "slack_webhook_url must be a Slack incoming webhook (https://hooks.slack.com/...)."
  }
}

variable "principals_yaml" {
  description = "The control plane's `principals:` YAML list: id, kind, groups and token_sha256 (the SHA-256 of each bearer token, never the token)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("(?m)^principals:", var.principals_yaml))
    error_message = "principals_yaml must start a `principals:` list."
  }
}

variable "control_plane_nats_creds" {
  description = "NATS credentials file content (user JWT + seed) of the control plane user in the WRIT account."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("BEGIN NATS USER JWT", var.control_plane_nats_creds)) && can(regex("BEGIN USER NKEY SEED", var.control_plane_nats_creds))
    error_message = "control_plane_nats_creds must be a NATS .creds file (user JWT and nkey seed)."
  }
}

# ---------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------

variable "nats_server_count" {
  description = "NATS servers in the JetStream cluster (3 or 5)."
  type        = number
  default     = 3

  validation {
    condition     = contains([3, 5], var.nats_server_count)
    error_message = "nats_server_count must be 3 or 5: an odd JetStream quorum that survives losing a server."
  }
}

variable "nats_operator_jwt" {
  description = "NATS operator JWT (public, signed). See README \"NATS authorization\"."
  type        = string

  validation {
    condition     = can(regex("^eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", trimspace(var.nats_operator_jwt)))
    error_message = "nats_operator_jwt must be a JWT (three base64url parts)."
  }
}

variable "nats_system_account" {
  description = "Public key (A...) and JWT of the NATS system account."
  type = object({
    public_key = string
    jwt        = string
  })

  validation {
    condition     = can(regex("^A[A-Z2-7]{55}$", var.nats_system_account.public_key))
    error_message = "nats_system_account.public_key must be an account public nkey (A followed by 55 base32 characters)."
  }
}

variable "nats_writ_account" {
  description = "Public key (A...) and JWT of the WRIT account: JetStream enabled, with the node-runner scoped signing key."
  type = object({
    public_key = string
    jwt        = string
  })

  validation {
    condition     = can(regex("^A[A-Z2-7]{55}$", var.nats_writ_account.public_key))
    error_message = "nats_writ_account.public_key must be an account public nkey (A followed by 55 base32 characters)."
  }
}

variable "nats_route_password" {
  description = "Password the NATS servers use on their cluster routes, e.g. `openssl rand -hex 32`. It goes unescaped into nats-route://route:<password>@host URLs and a quoted config string, so only URL-unreserved characters are allowed."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9._~-]{24,256}$", var.nats_route_password))
    error_message = "nats_route_password must be 24 to 256 characters from A-Z a-z 0-9 . _ ~ - (no character that a URL or the NATS config would read as syntax), e.g. openssl rand -hex 32."
  }
}

variable "nats_tls_ca_pem" {
  description = "PEM CA certificate that signed nats_tls_cert_pem. Public: every NATS client (control plane, runners, watchdog) verifies the servers against it."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.nats_tls_ca_pem)) && !can(regex("PRIVATE KEY", var.nats_tls_ca_pem))
    error_message = "nats_tls_ca_pem must hold PEM certificates only (never a private key)."
  }
}

variable "nats_tls_cert_pem" {
  description = "PEM certificate every NATS server presents, to clients and (mutual TLS) to its peers on routes: extended key usage serverAuth and clientAuth; SANs DNS:<nats_tls_server_name> and the IP of every host that may run a NATS server. See README \"NATS over TLS\"."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.nats_tls_cert_pem)) && !can(regex("PRIVATE KEY", var.nats_tls_cert_pem))
    error_message = "nats_tls_cert_pem must hold PEM certificates only (the key goes into nats_tls_key_pem)."
  }
}

variable "nats_tls_key_pem" {
  description = "PEM private key of nats_tls_cert_pem. Stored only in the NATS job's Nomad Variable."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("-----BEGIN [A-Z ]*PRIVATE KEY-----", var.nats_tls_key_pem))
    error_message = "nats_tls_key_pem must be a PEM private key."
  }
}

variable "nats_tls_server_name" {
  description = "DNS name on nats_tls_cert_pem that NATS clients verify the servers against: they reach the servers by IP (Nomad service discovery), and the Node.js client checks an IP-addressed server against \"localhost\" otherwise."
  type        = string
  default     = "writ-nats"

  validation {
    condition     = can(regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", var.nats_tls_server_name))
    error_message = "nats_tls_server_name must be a DNS name (letters, digits, hyphens, dots)."
  }
}

variable "nats_data_host_volume" {
  description = "Client host_volume holding the JetStream store (nomad-client-snippets/host-volumes.hcl)."
  type        = string
  default     = "writ-nats"
}

# ---------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------

variable "nomad_data_dir" {
  description = "The Nomad clients' data_dir, passed to every runner (--nomad-data-dir): storage.csi_volume_ls lists its client/csi subtree. The same on every client."
  type        = string
  default     = "/opt/nomad/data"

  validation {
    condition     = startswith(var.nomad_data_dir, "/") && !contains(split("/", var.nomad_data_dir), "..") && !strcontains(var.nomad_data_dir, "{")
    error_message = "nomad_data_dir must be an absolute path without \"..\" segments."
  }
}

variable "runner_nats_creds_host_path" {
  description = "Where each host keeps its own NATS creds (user named after its Nomad node id)."
  type        = string
  default     = "/etc/writ/nats/node-runner.creds"

  validation {
    condition     = startswith(var.runner_nats_creds_host_path, "/")
    error_message = "runner_nats_creds_host_path must be an absolute path."
  }
}

variable "deploy_csi_node_plugin" {
  description = "Deploy the democratic-csi node plugin with the mkfs guard."
  type        = bool
  default     = true
}

variable "csi_image" {
  description = "democratic-csi image; pin a digest in production."
  type        = string
  default     = "docker.io/democraticcsi/democratic-csi:latest"
}

variable "csi_plugin_id" {
  description = "CSI plugin id of the democratic-csi node plugin, and its --csi-name (democratic-csi requires them equal; the controller must use the same)."
  type        = string
  default     = "org.democratic-csi.iscsi"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", var.csi_plugin_id))
    error_message = "csi_plugin_id must be a CSI driver name such as org.democratic-csi.iscsi (letters, digits, '.', '_', '-')."
  }
}

variable "csi_driver_config_yaml" {
  description = "democratic-csi driver config for the NODE plugin (no storage API secrets here; those belong to the controller)."
  type        = string
  default     = "driver: freenas-iscsi\n"
}

variable "mkfs_allow_list_host_path" {
  description = "Allow-list of new devices the mkfs guard may format, on each host."
  type        = string
  default     = "/etc/writ/mkfs-allow"

  validation {
    condition     = startswith(var.mkfs_allow_list_host_path, "/")
    error_message = "mkfs_allow_list_host_path must be an absolute path."
  }
}

variable "mkfs_allowed_filesystems" {
  description = "Filesystems the mkfs guard lets the CSI node plugin create (after the blank-and-readable proof); a volume with any other fs_type fails to stage instead of being formatted."
  type        = list(string)
  default     = ["ext4", "xfs"]

  validation {
    condition     = length(var.mkfs_allowed_filesystems) > 0 && alltrue([for fs in var.mkfs_allowed_filesystems : contains(["ext2", "ext3", "ext4", "xfs", "btrfs", "fat", "vfat", "msdos", "exfat", "ntfs", "minix", "bfs", "cramfs"], fs)])
    error_message = "Each entry must be a filesystem whose mkfs.<fs> the guard stands in front of: ext2, ext3, ext4, xfs, btrfs, fat, vfat, msdos, exfat, ntfs, minix, bfs, cramfs."
  }
}

variable "blank_proof_timeout_seconds" {
  description = "Seconds each probe by the mkfs guard may take before it refuses."
  type        = number
  default     = 10

  validation {
    condition     = var.blank_proof_timeout_seconds >= 1 && var.blank_proof_timeout_seconds <= 120
    error_message = "blank_proof_timeout_seconds must be between 1 and 120."
  }
}

variable "deploy_multipath_watchdog" {
  description = "Deploy the multipath watchdog system job."
  type        = bool
  default     = true
}

variable "watchdog_interval" {
  description = "How often the multipath watchdog checks every map."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m)$", var.watchdog_interval))
    error_message = "watchdog_interval must be a duration such as 30s."
  }
}

variable "node_exporter_textfile_dir" {
  description = "Host directory of node_exporter's textfile collector."
  type        = string
  default     = "/var/lib/node_exporter/textfile_collector"

  validation {
    condition     = startswith(var.node_exporter_textfile_dir, "/")
    error_message = "node_exporter_textfile_dir must be an absolute path."
  }
}
