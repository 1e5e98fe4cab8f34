package catalogue_test

import (
	"fmt"

	"github.com/audittrail/audittrail/schemas/catalogue"
)

func ExampleLookup() {
	e, ok := catalogue.Lookup("Warehouses Disabled")
	fmt.Println(ok, e.Category, e.ResourceType)

	_, ok = catalogue.Lookup("warehouses disabled") // names are exact
	fmt.Println(ok)
	// Output:
	// true Warehouses warehouse
	// false
}

func ExampleIsFailure() {
	fmt.Println(catalogue.IsFailure("Audience Destination Sync Failed"))
	fmt.Println(catalogue.IsFailure("Audience Deleted"))
	// Output:
	// true
	// false
}

func ExampleValidCustomName() {
	fmt.Println(catalogue.ValidCustomName("Invoice Paid"))
	fmt.Println(catalogue.ValidCustomName("User Added via SAML"))
	fmt.Println(catalogue.ValidCustomName("invoice paid"))
	// Output:
	// true
	// true
	// false
}
