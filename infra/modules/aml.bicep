// Azure ML: the workspace (its own storage account: Azure ML needs a flat-namespace one), a CPU
// compute cluster with a system-assigned identity (which reads and writes the lake) that scales to
// zero, and the `demandops` environment built from ml/environment/conda.yml, versioned by content.
param location string
param tags object
param workspaceName string
param storageName string
param keyVaultId string
param appInsightsId string
param vmSize string
param maxNodes int

var condaFile = loadTextContent('../../ml/environment/conda.yml')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
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

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  name: workspaceName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: workspaceName
    storageAccount: storage.id
    keyVault: keyVaultId
    applicationInsights: appInsightsId
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
  }
}

resource compute 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: 'cpu-cluster'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'AmlCompute'
    properties: {
      vmSize: vmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: maxNodes
        nodeIdleTimeBeforeScaleDown: 'PT10M'
      }
    }
  }
}

resource environmentContainer 'Microsoft.MachineLearningServices/workspaces/environments@2024-10-01' = {
  parent: workspace
  name: 'demandops'
  properties: {
    description: 'Training and scoring for demandops (ml/environment/)'
  }
}

resource environmentVersion 'Microsoft.MachineLearningServices/workspaces/environments/versions@2024-10-01' = {
  parent: environmentContainer
  name: uniqueString(condaFile)
  properties: {
    image: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'
    condaFile: condaFile
    osType: 'Linux'
  }
}

output workspaceId string = workspace.id
output workspacePrincipalId string = workspace.identity.principalId
output computeName string = compute.name
output computePrincipalId string = compute.identity.principalId
output environmentName string = environmentContainer.name
output environmentVersion string = environmentVersion.name
