// Key Vault with Azure RBAC (no access policies). Holds the few secrets that are not identities,
// e.g. the Function App key Data Factory calls it with (docs/deploy.md).
param location string
param tags object
param keyVaultName string
param purgeProtection bool

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

output id string = vault.id
output uri string = vault.properties.vaultUri
