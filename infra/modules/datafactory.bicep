// Data Factory with a system-assigned identity and its linked services, all authenticating as
// that identity: the lake (ADLS Gen2), Key Vault, Azure ML and the Function App (whose key it reads
// from Key Vault). Pipelines and triggers are kept as JSON in adf/ and deployed from there
// (docs/deploy.md), so that they are edited in one place.
param location string
param tags object
param dataFactoryName string
param lakeDfsUrl string
param keyVaultUri string
param functionAppUrl string
param workspaceName string

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

output principalId string = factory.identity.principalId
output id string = factory.id
