// The subscription's Event Grid system topic (Microsoft.Resources.Subscriptions) and the event
// subscriptions that deliver its Success events for tracked resource types to `resource-events`.
targetScope = 'resourceGroup'

param identityResourceId string
param functionResourceId string
param storageAccountResourceId string
param deadLetterContainerName string
param deployEventSubscriptions bool
param tags object

// Event Grid allows 25 values across all advanced filters of one event subscription, and the
// filters of one subscription are ANDed, so a longer list cannot be split into several filters
// of the same subscription: it is split into several event subscriptions instead, 25 prefixes
// each. The prefixes are disjoint, so an event matches at most one of them (no duplicates).
var maxValuesPerSubscription = 25
var tracked = loadJsonContent('../tracked-operations.json')
var prefixes = tracked.prefixes
var chunkCount = (length(prefixes) + maxValuesPerSubscription - 1) / maxValuesPerSubscription

// Only Success: Failure and Cancel change nothing (the handler would acknowledge and drop them).
var includedEventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceDeleteSuccess'
  'Microsoft.Resources.ResourceActionSuccess'
]

// One system topic per subscription is all Azure allows for this source.
resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-seedwatch-${subscription().subscriptionId}'
  location: 'global'
  tags: tags
  // The seedwatch identity writes dead letters (it holds Storage Blob Data Owner on the account,
  // which allows no Shared Key).
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityResourceId}': {}
    }
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource toFunction 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [
  for chunk in range(0, chunkCount): if (deployEventSubscriptions) {
    parent: topic
    name: 'seedwatch-resource-events-${chunk}'
    properties: {
      eventDeliverySchema: 'EventGridSchema'
      destination: {
        endpointType: 'AzureFunction'
        properties: {
          resourceId: functionResourceId
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
      // Event Grid's maximum: the handler answers 2xx unless it could not queue a retry, so a
      // failed delivery is worth retrying for a day before it becomes a dead letter.
      retryPolicy: {
        maxDeliveryAttempts: 30
        eventTimeToLiveInMinutes: 1440
      }
      deadLetterWithResourceIdentity: {
        identity: {
          type: 'UserAssigned'
          userAssignedIdentity: identityResourceId
        }
        deadLetterDestination: {
          endpointType: 'StorageBlob'
          properties: {
            resourceId: storageAccountResourceId
            blobContainerName: deadLetterContainerName
          }
        }
      }
    }
  }
]

output systemTopicName string = topic.name
output eventSubscriptionCount int = deployEventSubscriptions ? chunkCount : 0
