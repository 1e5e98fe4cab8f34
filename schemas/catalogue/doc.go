// Package catalogue is the audit trail's event catalogue.
//
// It is the fixed list of event names the platform records, each with the
// product area (category) it belongs to and the type of resource it is
// about.
//
// Event names are exact. Case and spacing matter: "Source Connected to
// Tracking Plan" and "Source Connected To Space" are both catalogue names,
// and they are what users filter on, what the Filters > Events dropdown
// lists and what forwarded events carry as their event name. [Lookup]
// therefore matches exactly and never folds case or trims spaces.
//
// The catalogue holds the names from the public documentation of the
// feature (including the legacy "Integrations ..." names for destinations),
// events defined in the same style for the remaining product areas, and the
// audit trail's own events (category "Audit Trail"). [Categories] lists the
// product areas; every one has at least three events.
//
// Failure events ("... Run Failed", "... Sync Failed") come from background
// jobs that retry; [IsFailure] recognises them by name.
//
// Names outside the catalogue are custom events. They are handled elsewhere,
// under [CustomCategory]; [ValidCustomName] says whether such a name is in
// the catalogue's style.
//
// The catalogue is built once, from a table compiled into the program; it is
// read-only, and every function in this package is safe for concurrent use.
package catalogue
