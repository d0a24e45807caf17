// Optional: resource events from a subscription in ANOTHER Entra tenant (an azure.tenants
// connection), delivered to this deployment's `resource-events` function. Event Grid delivers
// across tenants to a webhook (an AzureFunction destination must be in the same tenant), so the
// destination is the function's Event Grid webhook URL with the app's `eventgrid_extension`
// system key (a secure parameter, never an output). Deployed with an account of the OTHER
// tenant, into a resource group of the monitored subscription:
//   az deployment group create --subscription <other-subscription> --resource-group <rg> \
//     --template-file infra/cross-tenant-events.bicep \
//     --parameters functionAppHost=<app>.azurewebsites.net eventGridKey=<eventgrid_extension key>
// The handler maps the subscription to its azure.tenants connection and reads with that
// connection's credential; an event from a subscription no connection covers is acknowledged
// and logged, never read. Reader for the connection's application in that subscription is
// granted separately (docs/deploy.md, "Several tenants").
targetScope = 'resourceGroup'

@description('Default host name of the seedwatch Function App (az functionapp show --name <functionAppName output of main.bicep> --query defaultHostName), e.g. seedwatch-abc.azurewebsites.net.')
param functionAppHost string

@secure()
@description('The Function App\'s eventgrid_extension system key (az functionapp keys list ... --query systemKeys.eventgrid_extension).')
param eventGridKey string

@description('Deploy the event subscriptions (false: the system topic only).')
param deployEventSubscriptions bool = true

param tags object = {}

// As infra/modules/events.bicep: the tracked operation prefixes, 25 per event subscription
// (Event Grid's limit across the advanced filters of one subscription), disjoint.
var maxValuesPerSubscription = 25
var tracked = loadJsonContent('tracked-operations.json')
var prefixes = tracked.prefixes
var chunkCount = (length(prefixes) + maxValuesPerSubscription - 1) / maxValuesPerSubscription

var includedEventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceDeleteSuccess'
  'Microsoft.Resources.ResourceActionSuccess'
]

// https://learn.microsoft.com/azure/azure-functions/functions-bindings-event-grid-trigger#manually-create-a-subscription
var webhookUrl = 'https://${functionAppHost}/runtime/webhooks/EventGrid?functionName=resource-events&code=${eventGridKey}'

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-seedwatch-${subscription().subscriptionId}'
  location: 'global'
  tags: tags
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource toWebhook 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [
  for chunk in range(0, chunkCount): if (deployEventSubscriptions) {
    parent: topic
    name: 'seedwatch-resource-events-${chunk}'
    properties: {
      eventDeliverySchema: 'EventGridSchema'
      destination: {
        endpointType: 'WebHook'
        properties: {
          endpointUrl: webhookUrl
          maxEventsPerBatch: 10
          preferredBatchSizeInKilobytes: 64
        }
      }
      filter: {
        includedEventTypes: includedEventTypes
        enableAdvancedFilteringOnArrays: false
        advancedFilters: [
          {
            operatorType: 'StringBeginsWith'
            key: 'data.operationName'
            values: take(skip(prefixes, chunk * maxValuesPerSubscription), maxValuesPerSubscription)
          }
        ]
      }
      // A missed delivery is repaired by the next reconcile; Event Grid's maximum retries.
      retryPolicy: {
        maxDeliveryAttempts: 30
        eventTimeToLiveInMinutes: 1440
      }
    }
  }
]

output systemTopicName string = topic.name
output eventSubscriptionCount int = deployEventSubscriptions ? chunkCount : 0
