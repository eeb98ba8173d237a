"""The REST API (DRF): thin views over the domain services, selectors and access module.

Every response error is `{"code", "message", "details"}` (`mediation.api.errors`); every case
endpoint scopes through `mediation.cases.selectors` (RELIABILITY.md §5.1).
"""
