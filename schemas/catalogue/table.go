package catalogue

// table is the catalogue. Names in the groups marked "documented" are copied
// verbatim from the feature's public documentation and must not be
// respelled; the other groups are defined by this product in the same style.
// Order here is for reading only: All sorts.
var table = []Entry{
	// Users (documented as "Access Management").
	{"User Invite Sent", CategoryUsers, "user_invite", "An invitation to join the workspace was sent."},
	{"User Invite Deleted", CategoryUsers, "user_invite", "A pending invitation to join the workspace was deleted."},
	{"User Invite Accepted", CategoryUsers, "user_invite", "An invitation to join the workspace was accepted."},
	{"User Added via SSO", CategoryUsers, "user", "A user joined the workspace through single sign-on."},
	{"User Removed", CategoryUsers, "user", "A user was removed from the workspace."},
	{"User Group Created", CategoryUsers, "user_group", "A user group was created."},
	{"User Group Updated", CategoryUsers, "user_group", "A user group's members or permissions were changed."},

	// Sources (documented as "Source").
	{"Source Created", CategorySources, "source", "A source was created."},
	{"Source Enabled", CategorySources, "source", "A source was enabled."},
	{"Source Disabled", CategorySources, "source", "A source was disabled."},
	{"Source Modified", CategorySources, "source", "A source's settings were changed."},
	{"Source Deleted", CategorySources, "source", "A source was deleted."},

	// Destinations: "Integrations ..." (documented) is the older name.
	{"Integrations Created", CategoryDestinations, "destination", "A destination was created (legacy name)."},
	{"Integrations Enabled", CategoryDestinations, "destination", "A destination was enabled (legacy name)."},
	{"Integrations Disabled", CategoryDestinations, "destination", "A destination was disabled (legacy name)."},
	{"Integrations Modified", CategoryDestinations, "destination", "A destination's settings were changed (legacy name)."},
	{"Integrations Deleted", CategoryDestinations, "destination", "A destination was deleted (legacy name)."},
	{"Destination Created", CategoryDestinations, "destination", "A destination was created."},
	{"Destination Enabled", CategoryDestinations, "destination", "A destination was enabled."},
	{"Destination Disabled", CategoryDestinations, "destination", "A destination was disabled."},
	{"Destination Modified", CategoryDestinations, "destination", "A destination's settings were changed."},
	{"Destination Deleted", CategoryDestinations, "destination", "A destination was deleted."},
	{"Destination Sync Failed", CategoryDestinations, "destination", "Delivering data to a destination failed."},

	// Functions (documented).
	{"Source Function Created", CategoryFunctions, "function", "A source function was created."},
	{"Source Function Deleted", CategoryFunctions, "function", "A source function was deleted."},
	{"Source Function Modified", CategoryFunctions, "function", "A source function's code or settings were changed."},
	{"Destination Function Created", CategoryFunctions, "function", "A destination function was created."},
	{"Destination Function Deleted", CategoryFunctions, "function", "A destination function was deleted."},
	{"Destination Function Modified", CategoryFunctions, "function", "A destination function's code or settings were changed."},

	// Destination Filters (documented).
	{"Destination Filters Created", CategoryDestinationFilters, "destination_filter", "A destination filter was created."},
	{"Destination Filters Modified", CategoryDestinationFilters, "destination_filter", "A destination filter was changed."},
	{"Destination Filters Deleted", CategoryDestinationFilters, "destination_filter", "A destination filter was deleted."},

	// Warehouses (documented).
	{"Warehouses Created", CategoryWarehouses, "warehouse", "A warehouse was created."},
	{"Warehouses Enabled", CategoryWarehouses, "warehouse", "A warehouse was enabled."},
	{"Warehouses Disabled", CategoryWarehouses, "warehouse", "A warehouse was disabled."},
	{"Warehouses Modified", CategoryWarehouses, "warehouse", "A warehouse's settings were changed."},
	{"Warehouses Deleted", CategoryWarehouses, "warehouse", "A warehouse was deleted."},
	{"Warehouse Run Failed", CategoryWarehouses, "warehouse", "A warehouse sync run failed."},

	// Tracking Plans (documented as "Protocols").
	{"Tracking Plan Created", CategoryTrackingPlans, "tracking_plan", "A tracking plan was created."},
	{"Tracking Plan Modified", CategoryTrackingPlans, "tracking_plan", "A tracking plan was changed."},
	{"Tracking Plan Deleted", CategoryTrackingPlans, "tracking_plan", "A tracking plan was deleted."},
	{"Source Connected to Tracking Plan", CategoryTrackingPlans, "tracking_plan", "A source was connected to a tracking plan."},
	{"Source Disconnected From Tracking Plan", CategoryTrackingPlans, "tracking_plan", "A source was disconnected from a tracking plan."},
	{"Tracking Plan Inferred", CategoryTrackingPlans, "tracking_plan", "A tracking plan was inferred from a source's observed events."},
	{"Tracking Plan New Event Blocked", CategoryTrackingPlans, "tracking_plan", "A tracking plan was set to block events it does not list."},
	{"Tracking Plan New Event Allowed", CategoryTrackingPlans, "tracking_plan", "A tracking plan was set to allow events it does not list."},
	{"Tracking Plan New Group Trait Omitted", CategoryTrackingPlans, "tracking_plan", "A tracking plan was set to omit unplanned group traits."},
	{"Tracking Plan New Identify Trait Omitted", CategoryTrackingPlans, "tracking_plan", "A tracking plan was set to omit unplanned identify traits."},
	{"Tracking Plan New Track Property Omitted", CategoryTrackingPlans, "tracking_plan", "A tracking plan was set to omit unplanned track properties."},
	{"Tracking Plan Operations Updated", CategoryTrackingPlans, "tracking_plan", "A tracking plan's handling of unplanned and invalid data was changed."},
	{"Tracking Plan Updated", CategoryTrackingPlans, "tracking_plan", "A tracking plan's events or properties were updated."},
	{"Violations Detected", CategoryTrackingPlans, "tracking_plan", "Events that violate a tracking plan were detected."},

	// Spaces (documented under "Engage").
	{"Source Connected To Space", CategorySpaces, "space", "A source was connected to a space."},
	{"Source Disconnected From Space", CategorySpaces, "space", "A source was disconnected from a space."},
	{"Space Created", CategorySpaces, "space", "A space was created."},
	{"Space Modified", CategorySpaces, "space", "A space's settings were changed."},
	{"Space Deleted", CategorySpaces, "space", "A space was deleted."},

	// Computed Traits (documented under "Engage").
	{"Computed Trait Created", CategoryComputedTraits, "computed_trait", "A computed trait was created."},
	{"Computed Trait Modified", CategoryComputedTraits, "computed_trait", "A computed trait was changed."},
	{"Computed Trait Deleted", CategoryComputedTraits, "computed_trait", "A computed trait was deleted."},
	{"Computed Trait CSV Downloaded", CategoryComputedTraits, "computed_trait", "A computed trait's values were downloaded as CSV."},
	{"Computed Trait Run Failed", CategoryComputedTraits, "computed_trait", "A computed trait's computation run failed."},
	{"Computed Trait Destination Sync Failed", CategoryComputedTraits, "computed_trait", "Syncing a computed trait to a destination failed."},

	// Audiences (documented under "Engage").
	{"Audience Created", CategoryAudiences, "audience", "An audience was created."},
	{"Audience Modified", CategoryAudiences, "audience", "An audience was changed."},
	{"Audience Deleted", CategoryAudiences, "audience", "An audience was deleted."},
	{"Audience CSV Downloaded", CategoryAudiences, "audience", "An audience's members were downloaded as CSV."},
	{"Audience Run Failed", CategoryAudiences, "audience", "An audience's computation run failed."},
	{"Audience Destination Sync Failed", CategoryAudiences, "audience", "Syncing an audience to a destination failed."},

	// Engage Warehouse Sources (documented under "Engage").
	{"Engage Warehouse Source Created", CategoryEngageWarehouseSources, "engage_warehouse_source", "A warehouse source for a space was created."},
	{"Engage Warehouse Source Modified", CategoryEngageWarehouseSources, "engage_warehouse_source", "A warehouse source for a space was changed."},
	{"Engage Warehouse Source Deleted", CategoryEngageWarehouseSources, "engage_warehouse_source", "A warehouse source for a space was deleted."},

	// Storage: storage destinations (data lakes, object storage).
	{"Storage Destination Created", CategoryStorage, "storage_destination", "A storage destination was created."},
	{"Storage Destination Enabled", CategoryStorage, "storage_destination", "A storage destination was enabled."},
	{"Storage Destination Disabled", CategoryStorage, "storage_destination", "A storage destination was disabled."},
	{"Storage Destination Modified", CategoryStorage, "storage_destination", "A storage destination's settings were changed."},
	{"Storage Destination Deleted", CategoryStorage, "storage_destination", "A storage destination was deleted."},
	{"Storage Destination Sync Failed", CategoryStorage, "storage_destination", "Syncing data to a storage destination failed."},

	// Consent Management.
	{"Consent Settings Modified", CategoryConsentManagement, "consent_settings", "The workspace's consent settings were changed."},
	{"Consent Category Created", CategoryConsentManagement, "consent_category", "A consent category was created."},
	{"Consent Category Modified", CategoryConsentManagement, "consent_category", "A consent category or its destination mapping was changed."},
	{"Consent Category Deleted", CategoryConsentManagement, "consent_category", "A consent category was deleted."},

	// Transformations.
	{"Transformation Created", CategoryTransformations, "transformation", "A transformation was created."},
	{"Transformation Enabled", CategoryTransformations, "transformation", "A transformation was enabled."},
	{"Transformation Disabled", CategoryTransformations, "transformation", "A transformation was disabled."},
	{"Transformation Modified", CategoryTransformations, "transformation", "A transformation was changed."},
	{"Transformation Deleted", CategoryTransformations, "transformation", "A transformation was deleted."},

	// Profiles Sync.
	{"Profiles Sync Enabled", CategoryProfilesSync, "profiles_sync", "Profiles Sync to a warehouse was enabled."},
	{"Profiles Sync Disabled", CategoryProfilesSync, "profiles_sync", "Profiles Sync to a warehouse was disabled."},
	{"Profiles Sync Modified", CategoryProfilesSync, "profiles_sync", "Profiles Sync settings were changed."},
	{"Profiles Sync Run Failed", CategoryProfilesSync, "profiles_sync", "A Profiles Sync run failed."},

	// Journeys.
	{"Journey Created", CategoryJourneys, "journey", "A journey was created."},
	{"Journey Modified", CategoryJourneys, "journey", "A journey was changed."},
	{"Journey Published", CategoryJourneys, "journey", "A journey was published."},
	{"Journey Deleted", CategoryJourneys, "journey", "A journey was deleted."},

	// Broadcasts.
	{"Broadcast Created", CategoryBroadcasts, "broadcast", "A broadcast was created."},
	{"Broadcast Modified", CategoryBroadcasts, "broadcast", "A broadcast was changed."},
	{"Broadcast Sent", CategoryBroadcasts, "broadcast", "A broadcast was sent."},
	{"Broadcast Deleted", CategoryBroadcasts, "broadcast", "A broadcast was deleted."},

	// Workspace.
	{"Workspace Modified", CategoryWorkspace, "workspace", "The workspace's settings were changed."},
	{"Workspace Access Token Created", CategoryWorkspace, "access_token", "A workspace access token was created."},
	{"Workspace Access Token Deleted", CategoryWorkspace, "access_token", "A workspace access token was deleted."},

	// Audit Trail: the product's own events.
	{"Audit Forwarding Enabled", CategoryAuditTrail, "audit_forwarding", "Forwarding of audit events to a source was turned on."},
	{"Audit Forwarding Disabled", CategoryAuditTrail, "audit_forwarding", "Forwarding of audit events to a source was turned off."},
	{"Audit Forwarding Modified", CategoryAuditTrail, "audit_forwarding", "The audit forwarding settings were changed."},
	{"Audit Trail Exported", CategoryAuditTrail, "audit_trail", "A view of the audit trail was exported as CSV."},
	{"Alert Webhook Modified", CategoryAuditTrail, "alert_webhook", "The audit alert webhook settings were changed."},
	{"Producer Credential Created", CategoryAuditTrail, "producer_credential", "An ingest credential for a producer was created, with its scopes."},
	{"Producer Credential Rotated", CategoryAuditTrail, "producer_credential", "A producer credential was given a new secret; the previous one stays valid for a grace period."},
	{"Producer Credential Revoked", CategoryAuditTrail, "producer_credential", "A producer credential was revoked: its secrets are no longer accepted."},
	{"Audit Retention Changed", CategoryAuditTrail, "audit_retention", "An operator changed how many days the workspace's audit events are kept, with the old and new values."},
	{"Audit Legal Hold Placed", CategoryAuditTrail, "audit_retention", "An operator placed a legal hold on the workspace's audit trail: nothing in it expires until the hold is released."},
	{"Audit Legal Hold Released", CategoryAuditTrail, "audit_retention", "An operator released the legal hold on the workspace's audit trail: its events expire again by its retention."},
	{"Audit Archive Restored", CategoryAuditTrail, "audit_archive", "An operator restored a verified archive of the workspace's expired audit events for a chosen time."},
}
