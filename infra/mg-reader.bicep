// Reader for the seedwatch identity on a management group: every subscription below it, present
// and future, is swept. Deployed by scripts/deploy.sh when readerScope is managementGroup:
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/mg-reader.bicep --parameters principalId=<identityPrincipalId>
// (Event Grid topics are per subscription: list the subscriptions to watch for events in
// monitoredSubscriptionIds of main.bicep.)
targetScope = 'managementGroup'

@description('Principal (object) id of the seedwatch identity: output identityPrincipalId of main.bicep.')
param principalId string

var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, readerRoleId)
  properties: {
    roleDefinitionId: tenantResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
