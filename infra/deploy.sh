#!/usr/bin/env bash
# Deploy (or update) the whole service with Terraform.
#
#   infra/deploy.sh PROJECT REGION [extra terraform apply args...]
#
# Environment (all optional):
#   TF_STATE_BUCKET  existing GCS bucket for the Terraform state (recommended
#                    for anything shared); without it the state stays local in
#                    infra/terraform.tfstate.
#   TF_VAR_FILE      a .tfvars file (see infra/terraform.tfvars.example); a
#                    relative path is relative to the directory you run from.
#   GEMINI_API_KEY   added as the first version of the "gemini-api-key" secret
#                    when that secret has no version yet (API-key mode).
#   AUTO_APPROVE=1   do not ask before applying.
#   DEPLOY_RETRY_DELAY  seconds before the one retry of a failed apply (90).
#
# Logins: `gcloud auth login` (this script's gcloud calls) and
# `gcloud auth application-default login` (Terraform's google provider).
#
# Portable to the bash 3.2 of macOS: no bash-4 features, and every expansion
# of a possibly empty array is written ${a[@]+"${a[@]}"} (bash < 4.4 treats
# "${a[@]}" of an empty array as unbound under `set -u`).
#
# Order of operations: the secrets must have a version before the functions are
# created (Cloud Run resolves "latest" when it starts a revision), so the script
# first applies only the secret containers, adds missing versions, then applies
# everything. Secret values never go through Terraform (they would be stored in
# the state).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '/^set -euo/q;2,$p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

PROJECT="$1"
REGION="$2"
shift 2

# Relative to the caller's directory, resolved before the cd below.
VAR_FILE="${TF_VAR_FILE:-}"
if [[ -n "${VAR_FILE}" && "${VAR_FILE}" != /* ]]; then
  VAR_FILE="${PWD}/${VAR_FILE}"
fi
if [[ -n "${VAR_FILE}" && ! -f "${VAR_FILE}" ]]; then
  echo "TF_VAR_FILE: no such file: ${VAR_FILE}" >&2
  exit 2
fi

cd "$(dirname "$0")"

command -v terraform >/dev/null || { echo "terraform is not installed" >&2; exit 1; }

# The playground's script is built (not committed) into functions/, which is
# what gets zipped and deployed: build it first (needs Node 20 and npm).
make -C .. --no-print-directory web
HAVE_GCLOUD=0
command -v gcloud >/dev/null && HAVE_GCLOUD=1

VARS=(-var "project_id=${PROJECT}" -var "region=${REGION}")
if [[ -n "${VAR_FILE}" ]]; then
  VARS+=(-var-file "${VAR_FILE}")
fi
# An existing (default) database fixes where the Firestore trigger must be:
# pass its location so that the plan fails at once (variable validation in
# variables.tf) if the configuration would put the trigger elsewhere.
if [[ "${HAVE_GCLOUD}" == "1" ]]; then
  DB_LOCATION="$(gcloud firestore databases describe --database='(default)' \
    --project="${PROJECT}" --format='value(locationId)' --quiet 2>/dev/null || true)"
  if [[ -n "${DB_LOCATION}" ]]; then
    echo "==> Existing Firestore database (default) in ${DB_LOCATION}"
    VARS+=(-var "existing_firestore_location=${DB_LOCATION}")
  fi
fi
# Interactive approval unless AUTO_APPROVE=1 (-input=false would make an
# unapproved apply fail).
APPLY_FLAGS=()
if [[ "${AUTO_APPROVE:-0}" == "1" ]]; then
  APPLY_FLAGS+=(-input=false -auto-approve)
fi

# --- init ------------------------------------------------------------------
if [[ -n "${TF_STATE_BUCKET:-}" ]]; then
  cat > backend_override.tf <<'EOF'
terraform {
  backend "gcs" {}
}
EOF
  terraform init -input=false -reconfigure \
    -backend-config="bucket=${TF_STATE_BUCKET}" \
    -backend-config="prefix=imagegen/${PROJECT}"
else
  rm -f backend_override.tf
  terraform init -input=false
fi

# --- 1. APIs + secret containers -----------------------------------------
echo "==> Enabling APIs and creating the secret containers"
terraform apply ${APPLY_FLAGS[@]+"${APPLY_FLAGS[@]}"} ${VARS[@]+"${VARS[@]}"} \
  -target=google_project_service.this \
  -target=google_secret_manager_secret.gemini_api_key \
  -target=google_secret_manager_secret.webhook

# --- 2. secret values (outside Terraform) ---------------------------------
secret_exists() { gcloud secrets describe "$1" --project="${PROJECT}" >/dev/null 2>&1; }
has_version() {
  [[ -n "$(gcloud secrets versions list "$1" --project="${PROJECT}" \
    --filter='state=ENABLED' --limit=1 --format='value(name)' 2>/dev/null)" ]]
}

MISSING=0
if [[ "${HAVE_GCLOUD}" == "1" ]]; then
  if ! has_version webhook-secret; then
    echo "==> Generating a random webhook signing secret (webhook-secret)"
    openssl rand -hex 32 | tr -d '\n' |
      gcloud secrets versions add webhook-secret --project="${PROJECT}" --data-file=- >/dev/null
  fi
  # The gemini-api-key secret only exists in API-key mode (use_vertex_ai = false).
  if secret_exists gemini-api-key && ! has_version gemini-api-key; then
    if [[ -n "${GEMINI_API_KEY:-}" ]]; then
      echo "==> Adding GEMINI_API_KEY as the first version of gemini-api-key"
      printf '%s' "${GEMINI_API_KEY}" |
        gcloud secrets versions add gemini-api-key --project="${PROJECT}" --data-file=- >/dev/null
    else
      MISSING=1
    fi
  fi
else
  echo "gcloud is not installed: cannot check the secrets; make sure they have a version." >&2
fi

if [[ "${MISSING}" == "1" ]]; then
  cat >&2 <<EOF

The secret "gemini-api-key" has no version yet. Add the Gemini API key, then
run this script again:

  printf '%s' "\$GEMINI_API_KEY" | gcloud secrets versions add gemini-api-key --project=${PROJECT} --data-file=-

(or set GEMINI_API_KEY in the environment of this script, or deploy with
use_vertex_ai = true to use Vertex AI without a key).
EOF
  exit 1
fi

# --- 3. everything ---------------------------------------------------------
echo "==> Applying the full configuration"
if ! terraform apply ${APPLY_FLAGS[@]+"${APPLY_FLAGS[@]}"} ${VARS[@]+"${VARS[@]}"} ${1+"$@"}; then
  # Fresh projects: API enablement, service-agent creation and IAM grants take
  # a minute or two to propagate (Eventarc/Cloud Build errors). Retry once.
  echo "==> Apply failed; retrying once in 90s (IAM / API propagation)" >&2
  sleep "${DEPLOY_RETRY_DELAY:-90}"
  terraform apply ${APPLY_FLAGS[@]+"${APPLY_FLAGS[@]}"} ${VARS[@]+"${VARS[@]}"} ${1+"$@"}
fi

echo
echo "API:            $(terraform output -raw api_url)"
echo "Public base:    $(terraform output -raw public_base_url)"
echo "Images bucket:  $(terraform output -raw images_bucket)"
echo
echo "Rotate / set secrets (new instances pick up 'latest'):"
terraform output -raw secret_commands
echo
