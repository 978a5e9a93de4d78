// Least privilege: each identity gets data-plane roles on exactly the resources it uses.
//   Function App: lake (read/write data; the blob trigger's connection `LakeStorage` needs Blob
//     Data Owner and Queue Data Contributor on it), its runtime account (host blobs, Durable queues
//     and tables), App Insights (publish telemetry), Key Vault (read secrets), Azure ML (submit
//     jobs).
//   Azure ML compute cluster: lake (read/write data), workspace (its MLflow registry: the jobs
//     log runs and register models). Workspace: lake (read, to browse datastores).
//   Data Factory: lake (read/write, ingestion), Key Vault (read the function key), Azure ML (run).
param lakeStorageName string
param runtimeStorageName string
param keyVaultName string
param appInsightsName string
param workspaceName string
param functionAppPrincipalId string
param amlComputePrincipalId string
param amlWorkspacePrincipalId string
param dataFactoryPrincipalId string

var role = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
}

var lakeGrants = [
  { principalId: functionAppPrincipalId, role: role.storageBlobDataOwner }
  { principalId: functionAppPrincipalId, role: role.storageQueueDataContributor }
  { principalId: amlComputePrincipalId, role: role.storageBlobDataContributor }
  { principalId: amlWorkspacePrincipalId, role: role.storageBlobDataReader }
  { principalId: dataFactoryPrincipalId, role: role.storageBlobDataContributor }
]
var runtimeGrants = [
  { principalId: functionAppPrincipalId, role: role.storageBlobDataOwner }
  { principalId: functionAppPrincipalId, role: role.storageQueueDataContributor }
  { principalId: functionAppPrincipalId, role: role.storageTableDataContributor }
]
var vaultGrants = [
  { principalId: functionAppPrincipalId, role: role.keyVaultSecretsUser }
  { principalId: dataFactoryPrincipalId, role: role.keyVaultSecretsUser }
]
var workspaceGrants = [
  { principalId: functionAppPrincipalId, role: role.azureMLDataScientist }
  { principalId: amlComputePrincipalId, role: role.azureMLDataScientist }
  { principalId: dataFactoryPrincipalId, role: role.azureMLDataScientist }
]

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: lakeStorageName
}

resource runtime 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: runtimeStorageName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource lakeRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for g in lakeGrants: {
  name: guid(lake.id, g.principalId, g.role)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', g.role)
    principalId: g.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource runtimeRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for g in runtimeGrants: {
  name: guid(runtime.id, g.principalId, g.role)
  scope: runtime
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', g.role)
    principalId: g.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource vaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for g in vaultGrants: {
  name: guid(vault.id, g.principalId, g.role)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', g.role)
    principalId: g.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionAppPrincipalId, role.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.monitoringMetricsPublisher)
    principalId: functionAppPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource workspaceRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for g in workspaceGrants: {
  name: guid(workspace.id, g.principalId, g.role)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', g.role)
    principalId: g.principalId
    principalType: 'ServicePrincipal'
  }
}]
