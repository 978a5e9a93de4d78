// The lake: ADLS Gen2 (hierarchical namespace), and the Function App's runtime account (host
// state, Durable task hub, deployment package). Shared-key access is off on both: identities only.
param location string
param tags object
param lakeName string
param runtimeName string
param lakeContainers array
param lakeSku string

var deploymentContainer = 'deployments'

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: lakeName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: lakeSku
  }
  properties: {
    isHnsEnabled: true
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource lakeBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: lake
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in lakeContainers: {
  parent: lakeBlobs
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource runtime 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: runtimeName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource runtimeBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: runtime
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: runtimeBlobs
  name: deploymentContainer
  properties: {
    publicAccess: 'None'
  }
}

output lakeId string = lake.id
output lakeDfsUrl string = lake.properties.primaryEndpoints.dfs
output lakeBlobUrl string = lake.properties.primaryEndpoints.blob
output lakeQueueUrl string = lake.properties.primaryEndpoints.queue
output runtimeName string = runtime.name
output deploymentContainerUrl string = '${runtime.properties.primaryEndpoints.blob}${deploymentContainer}'
