// Data Factory with a system-assigned identity and its linked services, all authenticating as
// that identity: the lake (ADLS Gen2), Key Vault, Azure ML and the Function App (whose key it reads
// from Key Vault). Its pipeline and triggers are the JSON files in adf/ (edited in the factory's
// own format, validated by tests/test_adf.py), loaded here; the storage-event trigger's scope is
// set to this deployment's lake. ARM creates triggers stopped: `make deploy-adf` starts them.
param location string
param tags object
param dataFactoryName string
param lakeDfsUrl string
param keyVaultUri string
param functionAppUrl string
param workspaceName string
param lakeId string

var runPipeline = loadJsonContent('../../adf/pipeline/demandops_run.json')
var weeklyTrigger = loadJsonContent('../../adf/trigger/weekly.json')
var arrivalTrigger = loadJsonContent('../../adf/trigger/raw_arrival.json')

resource factory 'Microsoft.DataFactory/factories@2018-06-01' = {
  name: dataFactoryName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publicNetworkAccess: 'Enabled'
  }
}

resource keyVaultLink 'Microsoft.DataFactory/factories/linkedservices@2018-06-01' = {
  parent: factory
  name: 'KeyVault'
  properties: {
    type: 'AzureKeyVault'
    typeProperties: {
      baseUrl: keyVaultUri
    }
  }
}

resource lakeLink 'Microsoft.DataFactory/factories/linkedservices@2018-06-01' = {
  parent: factory
  name: 'Lake'
  properties: {
    type: 'AzureBlobFS'
    typeProperties: {
      url: lakeDfsUrl
    }
  }
}

resource amlLink 'Microsoft.DataFactory/factories/linkedservices@2018-06-01' = {
  parent: factory
  name: 'AzureML'
  properties: {
    type: 'AzureMLService'
    typeProperties: {
      subscriptionId: subscription().subscriptionId
      resourceGroupName: resourceGroup().name
      mlWorkspaceName: workspaceName
      authentication: 'MSI'
    }
  }
}

resource functionLink 'Microsoft.DataFactory/factories/linkedservices@2018-06-01' = {
  parent: factory
  name: 'FunctionApp'
  properties: {
    type: 'AzureFunction'
    typeProperties: {
      functionAppUrl: functionAppUrl
      functionKey: {
        type: 'AzureKeyVaultSecret'
        store: {
          referenceName: keyVaultLink.name
          type: 'LinkedServiceReference'
        }
        secretName: 'function-app-key'
      }
    }
  }
}

resource pipeline 'Microsoft.DataFactory/factories/pipelines@2018-06-01' = {
  parent: factory
  name: runPipeline.name
  properties: runPipeline.properties
  dependsOn: [
    functionLink
  ]
}

resource weekly 'Microsoft.DataFactory/factories/triggers@2018-06-01' = {
  parent: factory
  name: weeklyTrigger.name
  properties: weeklyTrigger.properties
  dependsOn: [
    pipeline
  ]
}

resource arrival 'Microsoft.DataFactory/factories/triggers@2018-06-01' = {
  parent: factory
  name: arrivalTrigger.name
  properties: union(arrivalTrigger.properties, {
    typeProperties: union(arrivalTrigger.properties.typeProperties, { scope: lakeId })
  })
  dependsOn: [
    pipeline
  ]
}

output principalId string = factory.identity.principalId
output id string = factory.id
