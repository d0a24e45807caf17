// The Function App and everything it uses, in one resource group. No keys or connection
// strings anywhere: the storage account refuses Shared Key, Service Bus refuses SAS, and every
// data-plane call is made by the one user-assigned identity created here.
targetScope = 'resourceGroup'

param location string
param namePrefix string
param functionAppName string
@allowed([
  'FlexConsumption'
  'Consumption'
])
param hostingPlan string
param maximumInstanceCount int
param instanceMemoryMB int
param reconcileSchedule string
param retryQueueName string
param ledgerTableName string
param apiKeySecretName string
param connectorConfigSecretName string
param scanId string
param seedTag string
param deleteStaleSeeds string
param logLevel string
param deployerPrincipalId string
param deployerPrincipalType string
param logRetentionDays int
param tags object

var isFlex = hostingPlan == 'FlexConsumption'
var suffix = uniqueString(resourceGroup().id)
// Storage and Key Vault names: 3-24 characters, letters and digits (vault also allows '-').
var storageAccountName = take('st${toLower(replace(namePrefix, '-', ''))}${suffix}', 24)
var keyVaultName = take('kv-${toLower(replace(namePrefix, '-', ''))}-${suffix}', 24)
var serviceBusName = 'sb-${namePrefix}-${suffix}'
// Flex Consumption: the deployment container `az functionapp deploy` writes to.
// Consumption: WEBSITE_RUN_FROM_PACKAGE points at packageContainerName/packageBlobName.
var packageContainerName = 'app-package'
var packageBlobName = 'seedwatch.zip'
var deadLetterContainerName = 'eventgrid-deadletter'
// The Functions host's own containers with identity-based AzureWebJobsStorage: leases (timer
// singleton, host id) and function keys. Created here so the identity needs no right to create
// containers, only to read and write blobs in these two.
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

// The one identity: created first so that its roles exist before the app starts.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${namePrefix}-${suffix}'
  location: location
  tags: tags
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${namePrefix}-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${namePrefix}-${suffix}'
  location: location
  kind: 'web'
  tags: tags
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_43:The name is built from lower-case letters and digits and cut to 24 characters (take()); checkov cannot evaluate the expression.
  #checkov:skip=CKV_AZURE_35:The Consumption plans run without a virtual network, so the host, the ledger and Event Grid dead-lettering reach the account over its public endpoint; every request needs an Entra token (Shared Key is off).
  #checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: no virtual network to put a private endpoint in; access is Entra-only.
  #checkov:skip=CKV_AZURE_206:Locally redundant storage is enough: the account holds host leases, the deployment package and the ledger, which the next full reconcile rebuilds.
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: packageContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for name in hostContainerNames: {
    parent: blobService
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTableName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: serviceBusName
  location: location
  tags: tags
  // Public endpoint, as for storage: no virtual network in the Consumption plans; SAS is
  // disabled, so every call needs an Entra token with a data role on the queue.
  // Standard: duplicate detection and scheduled messages (Basic has no duplicate detection).
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource retryQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: retryQueueName
  properties: {
    // The retry function re-applies one resource: well under a minute; the host renews the
    // lock for longer work (maxAutoLockRenewalDuration).
    lockDuration: 'PT1M'
    // A delivery fails only when the handler could not even queue the next attempt; five tries,
    // then the dead-letter queue where the operator sees it (docs/deploy.md, troubleshooting).
    maxDeliveryCount: 5
    // The handler's backoff tops out at retry.max_delay (1 h by default) x retry.max_attempts.
    defaultMessageTimeToLive: 'P7D'
    deadLetteringOnMessageExpiration: true
    // Every attempt carries a fresh MessageId; duplicate detection drops accidental double sends.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    requiresSession: false
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  #checkov:skip=CKV_AZURE_109:Key Vault references are resolved by the App Service platform over the public endpoint (no virtual network in the Consumption plans); access needs Entra RBAC (Key Vault Secrets User), no access policies exist.
  #checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

var secretUriBase = '${vault.properties.vaultUri}secrets/'
// serviceBusEndpoint is https://<namespace>.servicebus.windows.net:443/ (other host suffix in sovereign clouds).
var serviceBusHost = split(split(serviceBus.properties.serviceBusEndpoint, '/')[2], ':')[0]

// Settings both plans share. Every name the code reads is here (tests/it/deploy.rs checks it).
var commonSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storage.name
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'ServiceBusConnection__fullyQualifiedNamespace'
    value: serviceBusHost
  }
  {
    name: 'ServiceBusConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'ServiceBusConnection__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: insights.properties.ConnectionString
  }
  {
    name: 'RECONCILE_SCHEDULE'
    value: reconcileSchedule
  }
  {
    name: 'RETRY_QUEUE'
    value: retryQueue.name
  }
  {
    name: 'CONNECTOR_CONFIG'
    value: '@Microsoft.KeyVault(SecretUri=${secretUriBase}${connectorConfigSecretName}/)'
  }
  {
    name: 'API_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${secretUriBase}${apiKeySecretName}/)'
  }
  {
    name: 'LOG_LEVEL'
    value: logLevel
  }
]

// Optional overrides of config.yml keys: set only when given, so the config stays the authority.
var scanIdSetting = empty(scanId) ? [] : [
  {
    name: 'SCAN_ID'
    value: scanId
  }
]
var seedTagSetting = empty(seedTag) ? [] : [
  {
    name: 'SEED_TAG'
    value: seedTag
  }
]
var deleteStaleSeedsSetting = empty(deleteStaleSeeds) ? [] : [
  {
    name: 'DELETE_STALE_SEEDS'
    value: deleteStaleSeeds
  }
]
var overrideSettings = concat(scanIdSetting, seedTagSetting, deleteStaleSeedsSetting)

// Linux Consumption runs the zip straight from blob storage, fetched with the identity.
// (Flex Consumption sets the runtime in functionAppConfig and rejects these settings.)
var consumptionSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'custom'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE'
    value: '${storage.properties.primaryEndpoints.blob}${packageContainerName}/${packageBlobName}'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
    value: identity.id
  }
]

var flexSku = {
  tier: 'FlexConsumption'
  name: 'FC1'
}
var consumptionSku = {
  tier: 'Dynamic'
  name: 'Y1'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225:Linux Consumption (Y1) has no zone redundancy, and the app keeps no state on its instances: the ledger and the queue live in the storage account and Service Bus.
  name: 'plan-${namePrefix}-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: isFlex ? flexSku : consumptionSku
  properties: {
    reserved: true
  }
}

// Flex Consumption: runtime and deployment package in functionAppConfig.
var flexConfig = {
  deployment: {
    storage: {
      type: 'blobContainer'
      value: '${storage.properties.primaryEndpoints.blob}${packageContainerName}'
      authentication: {
        type: 'UserAssignedIdentity'
        userAssignedIdentityResourceId: identity.id
      }
    }
  }
  scaleAndConcurrency: {
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  runtime: {
    name: 'custom'
    version: '1.0'
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_222:Event Grid (AzureFunction destination) and resync callers reach the app over its public endpoint; the Consumption plans have no virtual network. Every function needs a key (resync: authLevel function; events: the Event Grid system key).
  #checkov:skip=CKV_AZURE_17:Client certificates cannot be presented by Event Grid deliveries; resync is protected by a function key.
  #checkov:skip=CKV_AZURE_212:Minimum instance counts are a Premium/Dedicated setting; the Consumption plans scale from zero, and an event that arrives while none runs is held by Event Grid (retries for 24 h) and Service Bus.
  #checkov:skip=CKV_AZURE_213:App Service health check does not apply to the Consumption plans; the Functions host watches the handler itself (GET / readiness, restart on exit).
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: isFlex ? concat(commonSettings, overrideSettings) : concat(commonSettings, consumptionSettings, overrideSettings)
    }
    functionAppConfig: isFlex ? flexConfig : null
  }
  dependsOn: [
    packageContainer
    identityHostBlobRoles
    identityPackageRole
    identityTableRole
    identityQueueRoles
    identityVaultRole
  ]
}

// No basic-auth publishing: deployments and the Kudu/SCM site take Entra ID only
// (https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable).
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

// ---- Role assignments of the identity: exactly these, nothing else. ----

// Host storage: read and write blobs in the host's lease and key containers only
// (https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
// No queue role: the host uses queues only for some bindings (blob trigger receipts, queue
// triggers), and this app's triggers are HTTP, timer and Service Bus.
resource identityHostBlobRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in hostContainerNames: {
    name: guid(hostContainers[i].id, identity.id, roles.storageBlobDataContributor)
    scope: hostContainers[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// The code package. Consumption runs it from the blob (read only; the deployer uploads it). Flex
// Consumption's deployment writes the package with the app's deployment-storage identity, so
// there the identity needs write access, to this container only
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#deployment).
var packageRoleId = isFlex ? roles.storageBlobDataContributor : roles.storageBlobDataReader

resource identityPackageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(packageContainer.id, identity.id, packageRoleId)
  scope: packageContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', packageRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The ledger table, on the account: the ledger creates its table when missing (POST /Tables is
// an account-level operation).
resource identityTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Send (failed applies become scheduled retries) and receive (the retry trigger), on the queue only.
var queueRoleIds = [
  roles.serviceBusDataSender
  roles.serviceBusDataReceiver
]

resource identityQueueRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in queueRoleIds: {
    name: guid(retryQueue.id, identity.id, roleId)
    scope: retryQueue
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource identityVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Optional, for the person or pipeline deploying: write the two secrets, upload the zip. ----

resource deployerVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

resource deployerPackageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId) && !isFlex) {
  name: guid(packageContainer.id, deployerPrincipalId, roles.storageBlobDataContributor)
  scope: packageContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

output functionAppName string = functionAppName
output functionAppResourceId string = site.id
output identityResourceId string = identity.id
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output keyVaultName string = vault.name
output storageAccountName string = storage.name
output storageAccountResourceId string = storage.id
output packageContainerName string = packageContainerName
output packageBlobName string = packageBlobName
output deadLetterContainerName string = deadLetterContainerName
output serviceBusNamespace string = serviceBus.name
output applicationInsightsName string = insights.name
