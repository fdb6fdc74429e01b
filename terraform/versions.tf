terraform {
  required_version = ">= 1.5.0"

  required_providers {
    nomad = {
      source = "hashicorp/nomad"
      # 2.x: nomad_variable, hcl2 without the `enabled` flag, job_acl on policies.
      version = ">= 2.1.0, < 3.0.0"
    }
  }
}
