-- Run once by the postgres image on a new data volume, as POSTGRES_USER (reconciler, a superuser
-- there), connected to POSTGRES_DB (reconciler_state: the state store both replicas share).
-- reconciler_registry: the built-in registry platform, shared by both replicas too.
-- crm_staging, crm_production: the example's managed CRM database of each environment.
CREATE DATABASE reconciler_registry;
CREATE DATABASE crm_staging;
CREATE DATABASE crm_production;
