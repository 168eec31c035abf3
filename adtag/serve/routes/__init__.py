"""The service's routes, one router per concern: tagging, model facts and health, the pages."""
