# Minimal use of the writ module. Secrets are NOT written here: pass them as
# TF_VAR_* environment variables (or from your secret store via a data
# source), e.g.
#   export TF_VAR_signing_key_pem="$(cat signing-key.pem)"
#   export TF_VAR_slack_webhook_url=...  TF_VAR_principals_yaml=...  TF_VAR_portal_session_key_hex=$(openssl rand -hex 32)
#   export TF_VAR_control_plane_nats_creds="$(cat writ-control-plane.creds)"
#   export TF_VAR_nats_route_password=...
#   export TF_VAR_trusted_public_keys_pem="$(cat signing-key.pub.pem)"
#   export TF_VAR_nats_operator_jwt="$(cat nsc/operator.jwt)"  (and the
#     TF_VAR_nats_system_account / TF_VAR_nats_writ_account objects)
#   export TF_VAR_nats_tls_ca_pem="$(cat nats-ca.pem)" TF_VAR_nats_tls_cert_pem="$(cat nats.pem)"
#   export TF_VAR_nats_tls_key_pem="$(cat nats-key.pem)"   (README "NATS over TLS")
#   terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    nomad = {
      source  = "hashicorp/nomad"
      version = ">= 2.1.0, < 3.0.0"
    }
  }
}

provider "nomad" {
  # NOMAD_ADDR and NOMAD_TOKEN (a management token) come from the environment.
}

variable "signing_key_pem" {
  description = "Ed25519 private key (PEM) that signs writs."
  type        = string
  sensitive   = true
}

variable "portal_session_key_hex" {
  description = "Portal session-cookie key, 64 hex characters (openssl rand -hex 32)."
  type        = string
  sensitive   = true
}

variable "slack_webhook_url" {
  description = "Slack incoming webhook for approval requests."
  type        = string
  sensitive   = true
}

variable "principals_yaml" {
  description = "The control plane's principals list (token SHA-256s only)."
  type        = string
  sensitive   = true
}

variable "control_plane_nats_creds" {
  description = "NATS creds of the control-plane user."
  type        = string
  sensitive   = true
}

variable "trusted_public_keys_pem" {
  description = "Public key(s) of the control plane's signing key(s), PEM."
  type        = string
}

variable "nats_operator_jwt" {
  description = "NATS operator JWT (from nsc)."
  type        = string
}

variable "nats_system_account" {
  description = "NATS system account public key and JWT (from nsc)."
  type        = object({ public_key = string, jwt = string })
}

variable "nats_writ_account" {
  description = "NATS WRIT account public key and JWT (from nsc)."
  type        = object({ public_key = string, jwt = string })
}

variable "nats_route_password" {
  description = "Password for NATS cluster routes."
  type        = string
  sensitive   = true
}

variable "nats_tls_ca_pem" {
  description = "CA certificate (PEM) of the NATS cluster's certificate."
  type        = string
}

variable "nats_tls_cert_pem" {
  description = "The NATS servers' certificate (PEM): DNS:writ-nats and the IP of every NATS host, serverAuth and clientAuth."
  type        = string
}

variable "nats_tls_key_pem" {
  description = "Private key (PEM) of the NATS servers' certificate."
  type        = string
  sensitive   = true
}

module "writ" {
  source = "../.."

  datacenters = ["dc1"]

  release_base_url     = "https://releases.example.internal/writ"
  writ_version         = "0.1.0"
  control_plane_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
  runner_sha256        = "0000000000000000000000000000000000000000000000000000000000000000"
  packs_sha256         = "0000000000000000000000000000000000000000000000000000000000000000"

  control_plane_public_url = "https://writ.example.internal"
  policy_yaml              = file("${path.module}/policy.yaml")
  trusted_public_keys_pem  = var.trusted_public_keys_pem

  signing_key_pem          = var.signing_key_pem
  slack_webhook_url        = var.slack_webhook_url
  portal_session_key_hex   = var.portal_session_key_hex
  principals_yaml          = var.principals_yaml
  control_plane_nats_creds = var.control_plane_nats_creds
  nats_route_password      = var.nats_route_password
  nats_tls_ca_pem          = var.nats_tls_ca_pem
  nats_tls_cert_pem        = var.nats_tls_cert_pem
  nats_tls_key_pem         = var.nats_tls_key_pem

  # Public NATS material from `nsc` (README "NATS authorization").
  nats_operator_jwt   = var.nats_operator_jwt
  nats_system_account = var.nats_system_account
  nats_writ_account   = var.nats_writ_account

  csi_driver_config_yaml = file("${path.module}/democratic-csi-node.yaml")

  # Where the alerts' runbook links point: docs/operations.md of this release.
  alert_runbook_url = "https://git.example.internal/platform/writ/-/blob/v0.1.0/docs/operations.md"
}

output "control_plane_url" {
  description = "Control-plane URL."
  value       = module.writ.control_plane_url
}

# Hand these to Prometheus or vmalert (README "Alerts"), e.g. with the
# hashicorp/local provider:
#   resource "local_file" "writ_rules" {
#     for_each = module.writ.alert_rules
#     filename = "/etc/prometheus/rules/${each.key}"
#     content  = each.value
#   }
output "alert_rules" {
  description = "writ's alert rule files, rendered with the module's thresholds."
  value       = module.writ.alert_rules
}
