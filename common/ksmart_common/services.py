"""The platform's services: each name with the nameko class that runs it.
Kept free of imports with side effects, so that tools can read it without
patching the standard library (runner.py patches it before loading one)."""

SERVICES = {
    "identity": "ksmart_identity.service:IdentityService",
    "catalogue": "ksmart_catalogue.service:CatalogueService",
    "applications": "ksmart_applications.service:ApplicationsService",
    "workflow": "ksmart_workflow.service:WorkflowService",
    "notifications": "ksmart_notifications.service:NotificationsService",
    "checkpointer": "ksmart_checkpointer.service:CheckpointerService",
    "gateway": "ksmart_gateway.service:GatewayService",
}
