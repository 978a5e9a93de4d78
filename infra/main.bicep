// demandops in one resource group: the lake (ADLS Gen2), the Function App that orchestrates the
// weekly batch (Durable Functions), Azure ML (training and scoring), Data Factory (ingestion and
// schedules), Key Vault and monitoring. Identities and least-privilege roles; no account keys.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/parameters/<env>.json
//
// Names follow one convention: '${prefix}-${env}-<kind>', and '${prefix}${env}<kind>' where Azure
// allows no dashes (storage accounts).
targetScope = 'resourceGroup'

@description('Short lowercase prefix of every resource name; make it unique to your organisation.')
@minLength(3)
@maxLength(11)
param prefix string

@description('The environment: dev (development, model-validation CD) or prod (releases).')
@allowed([
  'dev'
  'prod'
])
param env string

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Containers of the lake account; `lake` holds the zones (raw/, conditioned/, ...).')
param lakeContainers array = [
  'lake'
]

@description('Storage redundancy of the lake account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
])
param lakeSku string = 'Standard_LRS'

@description('Most Function App instances the Flex Consumption plan scales out to.')
param functionMaxInstances int = 40

@description('Memory of one Function App instance, MB (Flex Consumption: 2048 or 4096).')
@allowed([
  2048
  4096
])
param functionInstanceMemoryMB int = 2048

@description('VM size of the Azure ML compute cluster that trains and scores.')
param amlVmSize string = 'Standard_DS3_v2'

@description('Most nodes of the Azure ML compute cluster (it scales to zero when idle).')
param amlMaxNodes int = 4

@description('Days of logs kept in Log Analytics.')
param logRetentionDays int = 30

@description('Key Vault purge protection (irreversible once on: use it in prod).')
param keyVaultPurgeProtection bool = false

var names = {
  lakeStorage: '${prefix}${env}lake'
  runtimeStorage: '${prefix}${env}func'
  amlStorage: '${prefix}${env}aml'
  logAnalytics: '${prefix}-${env}-log'
  appInsights: '${prefix}-${env}-appi'
  plan: '${prefix}-${env}-plan'
  functionApp: '${prefix}-${env}-func'
  keyVault: '${prefix}-${env}-kv'
  workspace: '${prefix}-${env}-mlw'
  dataFactory: '${prefix}-${env}-adf'
}
var lakeUrl = 'abfs://${lakeContainers[0]}@${names.lakeStorage}.dfs.${environment().suffixes.storage}'
var tags = {
  app: 'demandops'
  env: env
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    retentionDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    lakeName: names.lakeStorage
    runtimeName: names.runtimeStorage
    lakeContainers: lakeContainers
    lakeSku: lakeSku
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: tags
    keyVaultName: names.keyVault
    purgeProtection: keyVaultPurgeProtection
  }
}

module aml 'modules/aml.bicep' = {
  name: 'aml'
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    storageName: names.amlStorage
    keyVaultId: keyVault.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
    vmSize: amlVmSize
    maxNodes: amlMaxNodes
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: names.plan
    functionAppName: names.functionApp
    runtimeStorageName: storage.outputs.runtimeName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    taskHubName: '${prefix}${env}hub'
    maxInstances: functionMaxInstances
    instanceMemoryMB: functionInstanceMemoryMB
    appSettings: {
      // demandops/core/settings.py: the environment, its lake, registry and Azure ML workspace
      DEMANDOPS_ENV: env
      DEMANDOPS_LAKE: lakeUrl
      DEMANDOPS_COMPUTE: 'azureml'
      DEMANDOPS_REGISTRY_URI: 'azureml'
      AZURE_ML_SUBSCRIPTION_ID: subscription().subscriptionId
      AZURE_ML_RESOURCE_GROUP: resourceGroup().name
      AZURE_ML_WORKSPACE: names.workspace
      AZURE_ML_LOCATION: location
      AZURE_ML_COMPUTE: aml.outputs.computeName
      AZURE_ML_ENVIRONMENT: 'azureml:${aml.outputs.environmentName}:${aml.outputs.environmentVersion}'
      // the blob trigger's connection `LakeStorage` (functions/blob_arrival.py), as the identity
      LakeStorage__blobServiceUri: storage.outputs.lakeBlobUrl
      LakeStorage__queueServiceUri: storage.outputs.lakeQueueUrl
      LakeStorage__credential: 'managedidentity'
    }
  }
}

module dataFactory 'modules/datafactory.bicep' = {
  name: 'datafactory'
  params: {
    location: location
    tags: tags
    dataFactoryName: names.dataFactory
    lakeDfsUrl: storage.outputs.lakeDfsUrl
    keyVaultUri: keyVault.outputs.uri
    functionAppUrl: functionApp.outputs.url
    workspaceName: names.workspace
    lakeId: storage.outputs.lakeId
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    lakeStorageName: names.lakeStorage
    runtimeStorageName: names.runtimeStorage
    keyVaultName: names.keyVault
    appInsightsName: names.appInsights
    workspaceName: names.workspace
    functionAppPrincipalId: functionApp.outputs.principalId
    amlComputePrincipalId: aml.outputs.computePrincipalId
    amlWorkspacePrincipalId: aml.outputs.workspacePrincipalId
    dataFactoryPrincipalId: dataFactory.outputs.principalId
  }
  dependsOn: [
    storage
    keyVault
    monitoring
  ]
}

output lakeUrl string = lakeUrl
output functionAppName string = names.functionApp
output functionAppUrl string = functionApp.outputs.url
output workspaceName string = names.workspace
output computeName string = aml.outputs.computeName
output dataFactoryName string = names.dataFactory
output keyVaultName string = names.keyVault
