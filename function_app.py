"""Azure Functions entry point (Python v2 programming model): registers the blueprints in
`functions/` and configures telemetry from the environment (App Insights when
APPLICATIONINSIGHTS_CONNECTION_STRING is set), nothing else."""

import azure.durable_functions as df
import azure.functions as func

from demandops.core import telemetry
from functions.activities import bp as activities_bp
from functions.blob_arrival import bp as blob_bp
from functions.http_config import bp as config_bp
from functions.http_forecasts import bp as forecasts_bp
from functions.http_runs import bp as runs_bp
from functions.orchestrators import bp as orchestrators_bp

telemetry.configure_host()
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (config_bp, forecasts_bp, runs_bp, orchestrators_bp, activities_bp, blob_bp):
    app.register_functions(blueprint)
