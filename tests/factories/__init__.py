"""factory_boy factories and case builders, one module per domain (STYLE.md "Tests").

- `agencies`: `AgencyFactory` and `township_tree()` (county 综治中心 → township agencies →
  village 调委会).
- `accounts`: `UserFactory` and `staff()`, the n-th user of a role at an agency.
- `cases`: valid ID numbers, party inputs, and builders that put a case into any state by
  calling the services in order (`dispute_in_state`, `petition_in_state`).
"""
