"""Who is calling the gateway: session cookie (with its 60 s cache cookie), bearer seam, CSRF."""
