// seedwatch: everything one deployment needs, deployed at subscription scope with
//   az deployment sub create --location <region> --template-file infra/main.bicep --parameters ...
// (scripts/deploy.sh runs it with a what-if preview first).
//
// Creates, in `resourceGroupName` of the current subscription: one user-assigned identity, the
// Function App (Flex Consumption or Linux Consumption) with Application Insights, its storage
// account (identity-only, holds the ledger table), the Service Bus retry queue and the Key Vault
// holding the ASM key and the connector config. In every monitored subscription: Reader for the
// identity (unless granted on a management group: infra/mg-reader.bicep) and an Event Grid
// system topic whose subscription delivers resource changes to the `resource-events` function.
targetScope = 'subscription'

@description('Azure region of the Function App and its resources.')
param location string = deployment().location

@description('Resource group created for the Function App and its resources.')
param resourceGroupName string = 'rg-seedwatch'

@description('Short prefix for resource names (lower-case letters and digits).')
@minLength(2)
@maxLength(10)
param namePrefix string = 'seedwatch'

@description('Function App name; must be globally unique (it becomes <name>.azurewebsites.net).')
param functionAppName string = '${namePrefix}-${uniqueString(subscription().id, resourceGroupName)}'

@description('FlexConsumption (default) or Consumption (Linux, Y1) for regions without Flex.')
@allowed([
  'FlexConsumption'
  'Consumption'
])
param hostingPlan string = 'FlexConsumption'

@description('Flex Consumption only: the most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption only: memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Subscriptions whose resource changes are watched (Event Grid system topic per subscription); the identity gets Reader on each unless readerScope is managementGroup.')
@minLength(1)
param monitoredSubscriptionIds array

@description('Where Reader is granted: on each monitored subscription, or on a management group (then deploy infra/mg-reader.bicep as well; scripts/deploy.sh does).')
@allowed([
  'subscriptions'
  'managementGroup'
])
param readerScope string = 'subscriptions'

@description('Resource group created in each monitored subscription for its Event Grid system topic.')
param eventsResourceGroupName string = 'rg-seedwatch-events'

@description('Create the Event Grid event subscriptions. They point at the resource-events function, which exists only once the code is deployed: scripts/deploy.sh deploys with false first, then the zip, then true.')
param deployEventSubscriptions bool = true

@description('NCRONTAB schedule (with seconds) of the full reconcile.')
param reconcileSchedule string = '0 0 */6 * * *'

@description('Name of the Service Bus retry queue (app setting RETRY_QUEUE).')
param retryQueueName string = 'seedwatch-retries'

@description('Ledger table in the Function App storage account (must match ledger.table in the config; default seedwatch).')
param ledgerTableName string = 'seedwatch'

@description('Key Vault secret holding the Hexiosec ASM API key (app setting API_KEY).')
param apiKeySecretName string = 'asm-api-key'

@description('Key Vault secret holding the whole connector config.yml (app setting CONNECTOR_CONFIG).')
param connectorConfigSecretName string = 'connector-config'

@description('Optional SCAN_ID override; empty leaves scan_id to the config.')
param scanId string = ''

@description('Optional SEED_TAG override; empty leaves seed_tag to the config.')
param seedTag string = ''

@description('Optional DELETE_STALE_SEEDS override (true/false); empty leaves it to the config.')
@allowed([
  ''
  'true'
  'false'
])
param deleteStaleSeeds string = ''

@description('LOG_LEVEL of the handler (tracing filter: error, warn, info, debug).')
param logLevel string = 'info'

@description('Object id of the person or pipeline running the deployment, granted Key Vault Secrets Officer on the vault (to store the two secrets) and, for the Consumption plan, Storage Blob Data Contributor on the package container (to upload the zip). Empty grants nothing.')
param deployerPrincipalId string = ''

@description('Principal type of deployerPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Tags applied to every resource.')
param tags object = {
  application: 'seedwatch'
}

resource appGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module app 'modules/app.bicep' = {
  name: 'seedwatch-app'
  scope: appGroup
  params: {
    location: location
    namePrefix: namePrefix
    functionAppName: functionAppName
    hostingPlan: hostingPlan
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    reconcileSchedule: reconcileSchedule
    retryQueueName: retryQueueName
    ledgerTableName: ledgerTableName
    apiKeySecretName: apiKeySecretName
    connectorConfigSecretName: connectorConfigSecretName
    scanId: scanId
    seedTag: seedTag
    deleteStaleSeeds: deleteStaleSeeds
    logLevel: logLevel
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    logRetentionDays: logRetentionDays
    tags: tags
  }
}

// One module per monitored subscription: Reader for the identity and the Event Grid wiring.
module monitored 'modules/monitored-subscription.bicep' = [
  for subscriptionId in monitoredSubscriptionIds: {
    name: 'seedwatch-monitor-${uniqueString(subscriptionId)}'
    scope: subscription(subscriptionId)
    params: {
      location: location
      principalId: app.outputs.identityPrincipalId
      grantReader: readerScope == 'subscriptions'
      eventsResourceGroupName: eventsResourceGroupName
      identityResourceId: app.outputs.identityResourceId
      functionResourceId: '${app.outputs.functionAppResourceId}/functions/resource-events'
      storageAccountResourceId: app.outputs.storageAccountResourceId
      deadLetterContainerName: app.outputs.deadLetterContainerName
      deployEventSubscriptions: deployEventSubscriptions
      tags: tags
    }
  }
]

output resourceGroupName string = appGroup.name
output functionAppName string = app.outputs.functionAppName
output functionAppResourceId string = app.outputs.functionAppResourceId
output hostingPlan string = hostingPlan
output identityPrincipalId string = app.outputs.identityPrincipalId
output identityClientId string = app.outputs.identityClientId
output keyVaultName string = app.outputs.keyVaultName
output apiKeySecretName string = apiKeySecretName
output connectorConfigSecretName string = connectorConfigSecretName
output storageAccountName string = app.outputs.storageAccountName
output packageContainerName string = app.outputs.packageContainerName
output packageBlobName string = app.outputs.packageBlobName
output serviceBusNamespace string = app.outputs.serviceBusNamespace
output retryQueueName string = retryQueueName
output deadLetterContainerName string = app.outputs.deadLetterContainerName
output applicationInsightsName string = app.outputs.applicationInsightsName
