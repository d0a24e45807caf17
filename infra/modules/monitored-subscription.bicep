// One monitored subscription: Reader for the seedwatch identity (unless Reader comes from a
// management group) and the Event Grid system topic that reports its resource changes.
targetScope = 'subscription'

param location string
param principalId string
param grantReader bool
param eventsResourceGroupName string
param identityResourceId string
param functionResourceId string
param storageAccountResourceId string
param deadLetterContainerName string
param deployEventSubscriptions bool
param tags object

// Reader (built-in): read every resource, change nothing. The sweep and the per-event ARM GET
// need nothing more.
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantReader) {
  name: guid(subscription().id, principalId, readerRoleId)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: tags
}

module events 'events.bicep' = {
  name: 'seedwatch-events'
  scope: eventsGroup
  params: {
    identityResourceId: identityResourceId
    functionResourceId: functionResourceId
    storageAccountResourceId: storageAccountResourceId
    deadLetterContainerName: deadLetterContainerName
    deployEventSubscriptions: deployEventSubscriptions
    tags: tags
  }
}
