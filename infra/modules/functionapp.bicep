// The Function App (Python, Flex Consumption) that runs the durable orchestration. System-assigned
// identity for everything: host storage (`AzureWebJobsStorage__accountName`), the deployment
// package, App Insights (Entra ID auth), the lake and Azure ML. No keys or connection strings
// with secrets in its settings.
param location string
param tags object
param planName string
param functionAppName string
param runtimeStorageName string
param deploymentContainerUrl string
param appInsightsConnectionString string
param taskHubName string
param maxInstances int
param instanceMemoryMB int

@description('Extra app settings (the environment, the lake URL, the Azure ML workspace).')
param appSettings object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

var baseSettings = {
  AzureWebJobsStorage__accountName: runtimeStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  AzureFunctionsJobHost__extensions__durableTask__hubName: taskHubName
}
var allSettings = union(baseSettings, appSettings)

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maxInstances
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [for setting in items(allSettings): {
        name: setting.key
        value: setting.value
      }]
    }
  }
}

output principalId string = site.identity.principalId
output url string = 'https://${site.properties.defaultHostName}'
