package org.apache.kafka.common.utils;

/**
 * The one method of kafka-clients' old AppInfoParser that the FileStream connectors call
 * (their version()). connect-file is not on Maven Central for 4.4.0, and kafka-clients 4.4.0
 * moved the class to org.apache.kafka.common.utils.internals; this shim lets connect-file 4.3.1,
 * the newest published, run on the 4.4.0 runtime.
 */
public final class AppInfoParser {
    private AppInfoParser() {}

    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }
}
