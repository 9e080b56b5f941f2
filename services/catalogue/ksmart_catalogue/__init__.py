"""The service catalogue: every service's form fields, documents, fees, SLA
days and workflow, in English and Malayalam, versioned and kept forever.

Definitions are JSON files shipped with the package
(definitions/<code>/v<version>.json, see services/catalogue/README.md); a
file is identified for ever by the content hash of its document."""
