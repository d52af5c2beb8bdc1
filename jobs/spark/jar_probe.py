"""The application of the child spark-submit that resolves a local session's packages (jobs/spark/jars.py). Its JVM has
resolved and downloaded them before it starts this script, which only prints the jars that JVM was given."""

import json

JARS_LINE = "SR2FHIR_JARS="
"""The line on stdout: this prefix, then the JSON list of the jars' URIs."""

if __name__ == "__main__":
    from pyspark.java_gateway import launch_gateway

    gateway = launch_gateway()  # the launching JVM's gateway (PYSPARK_GATEWAY_PORT), not a new JVM
    jars = gateway.jvm.java.lang.System.getProperty("spark.jars") or ""
    print(JARS_LINE + json.dumps(jars.split(",")), flush=True)
