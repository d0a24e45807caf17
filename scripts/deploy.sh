#!/usr/bin/env bash
# Deploys seedwatch to Azure with one command: previews the infrastructure (what-if), creates
# it, stores the two secrets in Key Vault, deploys the code zip, then wires the Event Grid
# subscriptions (which need the deployed resource-events function). See docs/deploy.md.
#
# Usage: scripts/deploy.sh --parameters FILE --location REGION [options]
#   --parameters FILE      ARM parameters file for infra/main.bicep (start from
#                          infra/main.parameters.example.json)
#   --location REGION      region of the deployment and, by default, of the resources
#   --config FILE          connector config.yml to store as the CONNECTOR_CONFIG secret
#   --api-key-file FILE    file holding the Hexiosec ASM API key, stored as the API_KEY secret
#                          (or set SEEDWATCH_API_KEY in the environment; never on the command line)
#   --management-group ID  grant Reader on this management group (infra/mg-reader.bicep); set
#                          readerScope=managementGroup in the parameters file as well
#   --zip PATH             deploy this package instead of building one with scripts/package.sh
#   --name NAME            deployment name (default seedwatch)
#   --no-deployer-roles    do not grant the signed-in principal Key Vault Secrets Officer (and,
#                          for Consumption, blob upload on the package container)
#   --what-if-only         print the preview and change nothing
#   --yes                  do not ask before applying the previewed changes
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"

parameters=""
location=""
config_file=""
api_key_file=""
management_group=""
zip_path=""
deployment_name="seedwatch"
deployer_roles=true
what_if_only=false
assume_yes=false

usage() {
  sed -n '2,/^set -euo/p' "$repo_root/scripts/deploy.sh" | sed -e '$d' -e 's/^# \{0,1\}//'
}

fail() {
  echo "deploy.sh: $*" >&2
  exit 1
}

step() {
  echo
  echo "==> $*" >&2
}

while (($# > 0)); do
  case "$1" in
    --parameters)
      parameters="${2:?--parameters needs a file}"
      shift 2
      ;;
    --location)
      location="${2:?--location needs a region}"
      shift 2
      ;;
    --config)
      config_file="${2:?--config needs a file}"
      shift 2
      ;;
    --api-key-file)
      api_key_file="${2:?--api-key-file needs a file}"
      shift 2
      ;;
    --management-group)
      management_group="${2:?--management-group needs an id}"
      shift 2
      ;;
    --zip)
      zip_path="${2:?--zip needs a path}"
      shift 2
      ;;
    --name)
      deployment_name="${2:?--name needs a name}"
      shift 2
      ;;
    --no-deployer-roles)
      deployer_roles=false
      shift
      ;;
    --what-if-only)
      what_if_only=true
      shift
      ;;
    --yes | -y)
      assume_yes=true
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "deploy.sh: unknown argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
done

# Paths given on the command line are relative to the caller's directory.
absolute() {
  case "$1" in
    "" | /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}
parameters="$(absolute "$parameters")"
config_file="$(absolute "$config_file")"
api_key_file="$(absolute "$api_key_file")"
zip_path="$(absolute "$zip_path")"
cd "$repo_root"

[[ -n "$parameters" ]] || fail "--parameters FILE is required (see infra/main.parameters.example.json)"
[[ -f "$parameters" ]] || fail "parameters file not found: $parameters"
[[ -n "$location" ]] || fail "--location REGION is required"
[[ -z "$config_file" || -f "$config_file" ]] || fail "config file not found: $config_file"
[[ -z "$api_key_file" || -f "$api_key_file" ]] || fail "API key file not found: $api_key_file"
command -v az >/dev/null || fail "the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli"
az account show --output none 2>/dev/null || fail "not signed in: run az login (and az account set --subscription <id>)"

readonly template="infra/main.bicep"
subscription_id="$(az account show --query id --output tsv)"
echo "deploy.sh: subscription $subscription_id, deployment $deployment_name, region $location" >&2

# The signed-in principal's object id, to let it write the secrets (and upload the Consumption zip).
deployer_id=""
deployer_type="User"
if [[ "$deployer_roles" == true ]]; then
  if [[ "$(az account show --query user.type --output tsv)" == "servicePrincipal" ]]; then
    deployer_type="ServicePrincipal"
    deployer_id="$(az ad sp show --id "$(az account show --query user.name --output tsv)" --query id --output tsv)"
  else
    deployer_id="$(az ad signed-in-user show --query id --output tsv)"
  fi
fi

# Runs `az deployment sub <verb>` on main.bicep with the user's parameters plus ours.
deployment() {
  local verb="$1" events="$2"
  shift 2
  az deployment sub "$verb" \
    --name "$deployment_name" \
    --location "$location" \
    --template-file "$template" \
    --parameters "@$parameters" \
    --parameters deployEventSubscriptions="$events" deployerPrincipalId="$deployer_id" \
    deployerPrincipalType="$deployer_type" \
    "$@"
}

output() {
  az deployment sub show --name "$deployment_name" --query "properties.outputs.$1.value" --output tsv
}

confirm() {
  [[ "$assume_yes" == true ]] && return 0
  local answer
  read -r -p "Apply these changes? [y/N] " answer
  [[ "$answer" == [yY] || "$answer" == [yY][eE][sS] ]] || fail "stopped before any change"
}

# Retries a command while new role assignments propagate (usually under a minute, up to ~10).
with_retries() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if "$@"; then
      return 0
    fi
    echo "deploy.sh: attempt $attempt failed (role assignments may still be propagating); retrying in 30 s" >&2
    sleep 30
  done
  return 1
}

if [[ "$what_if_only" == true ]]; then
  step "Preview of every change (what-if), including the Event Grid subscriptions"
  deployment what-if true
  exit 0
fi

if [[ -z "$zip_path" ]]; then
  step "Building the package"
  zip_path="$(scripts/package.sh --out dist)"
fi
[[ -f "$zip_path" ]] || fail "package not found: $zip_path"

# Phase 1: everything but the event subscriptions (their destination function does not exist
# before the first code deployment; on later runs they are left as they are).
step "Preview (what-if) of the infrastructure"
deployment what-if false
confirm
step "Deploying the infrastructure"
deployment create false --output none

resource_group="$(output resourceGroupName)"
app_name="$(output functionAppName)"
app_id="$(output functionAppResourceId)"
hosting_plan="$(output hostingPlan)"
vault="$(output keyVaultName)"
principal_id="$(output identityPrincipalId)"

if [[ -n "$management_group" ]]; then
  step "Granting Reader on management group $management_group"
  az deployment mg create \
    --name "$deployment_name-reader" \
    --management-group-id "$management_group" \
    --location "$location" \
    --template-file infra/mg-reader.bicep \
    --parameters principalId="$principal_id" \
    --output none
fi

if [[ -n "$config_file" ]]; then
  step "Storing $config_file as Key Vault secret $(output connectorConfigSecretName)"
  with_retries az keyvault secret set --vault-name "$vault" --name "$(output connectorConfigSecretName)" \
    --file "$config_file" --encoding utf-8 --content-type "application/yaml" --output none
fi

if [[ -n "$api_key_file" || -n "${SEEDWATCH_API_KEY:-}" ]]; then
  step "Storing the ASM API key as Key Vault secret $(output apiKeySecretName)"
  key_file="$api_key_file"
  if [[ -z "$key_file" ]]; then
    key_file="$(mktemp)"
    trap 'rm -f "$key_file"' EXIT
    chmod 600 "$key_file"
    printf '%s' "$SEEDWATCH_API_KEY" >"$key_file"
  fi
  with_retries az keyvault secret set --vault-name "$vault" --name "$(output apiKeySecretName)" \
    --file "$key_file" --encoding utf-8 --output none
fi

step "Deploying the code ($zip_path) to $app_name ($hosting_plan)"
if [[ "$hosting_plan" == "FlexConsumption" ]]; then
  with_retries az functionapp deploy --resource-group "$resource_group" --name "$app_name" \
    --src-path "$zip_path" --type zip --output none
else
  # Linux Consumption runs the zip from blob storage (WEBSITE_RUN_FROM_PACKAGE, read with the
  # app's identity); upload it, then make the platform re-read the triggers.
  with_retries az storage blob upload --auth-mode login \
    --account-name "$(output storageAccountName)" \
    --container-name "$(output packageContainerName)" \
    --name "$(output packageBlobName)" \
    --file "$zip_path" --overwrite --output none
  az functionapp restart --resource-group "$resource_group" --name "$app_name" --output none
  az resource invoke-action --action syncfunctiontriggers --ids "$app_id" --output none
fi

step "Waiting for the resource-events function to be registered"
registered=false
for _ in $(seq 1 30); do
  if az functionapp function show --resource-group "$resource_group" --name "$app_name" \
    --function-name resource-events --output none 2>/dev/null; then
    registered=true
    break
  fi
  sleep 10
done
[[ "$registered" == true ]] || fail "resource-events did not appear within 5 minutes: check the app's logs (docs/deploy.md, troubleshooting), then rerun this script"

# Phase 2: the Event Grid subscriptions, now that their destination exists.
step "Preview (what-if) of the Event Grid subscriptions"
deployment what-if true
confirm
step "Creating the Event Grid subscriptions"
deployment create true --output none

step "Done"
cat >&2 <<EOF
Function App:  $app_name (resource group $resource_group)
Key Vault:     $vault
Next: trigger a first full reconcile and watch it (docs/deploy.md, step 6):
  az functionapp function keys list -g $resource_group -n $app_name --function-name resync
EOF
