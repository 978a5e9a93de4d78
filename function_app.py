"""Azure Functions entry point (Python v2 programming model): registers the blueprints in
`functions/` and nothing else."""

import azure.functions as func

from functions.http_config import bp as config_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(config_bp)
