// Builds the npm-style FHIR package hl7.fhir.r4.core#4.0.1 from the R4 definitions HAPI FHIR ships on Maven Central
// (ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4), for sr2fhir's R4 profile tests: the package itself is on
// packages.fhir.org only, which the validator cannot reach here.
//
//   java -cp "CACHE/lib/*" R4CorePackage.java RESOURCES_JAR TARGET_PACKAGE_FOLDER
//
// The jar holds the R4 specification's definition Bundles as XML (profiles-types, profiles-resources,
// profiles-others, extension-definitions, valuesets, v3-codesystems, v2-tables). Each resource of each Bundle is
// written as <Type>-<id>.json (R4 JSON, by the R4 model's own parser), with a package.json naming the package, so
// the validator's package manager loads it as it would the published core package. Progress goes to stderr.
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.hl7.fhir.r4.formats.JsonParser;
import org.hl7.fhir.r4.formats.XmlParser;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Resource;

public class R4CorePackage {
  static final List<String> BUNDLES =
      List.of(
          "org/hl7/fhir/r4/model/profile/profiles-types.xml",
          "org/hl7/fhir/r4/model/profile/profiles-resources.xml",
          "org/hl7/fhir/r4/model/profile/profiles-others.xml",
          "org/hl7/fhir/r4/model/extension/extension-definitions.xml",
          "org/hl7/fhir/r4/model/valueset/valuesets.xml",
          "org/hl7/fhir/r4/model/valueset/v3-codesystems.xml",
          "org/hl7/fhir/r4/model/valueset/v2-tables.xml");

  public static void main(String[] args) throws Exception {
    Path target = Path.of(args[1]);
    Files.createDirectories(target);
    JsonParser json = new JsonParser();
    int written = 0;
    try (ZipFile jar = new ZipFile(args[0])) {
      for (String name : BUNDLES) {
        ZipEntry entry = jar.getEntry(name);
        if (entry == null) {
          throw new IllegalStateException(name + " is not in " + args[0]);
        }
        Bundle bundle;
        try (InputStream in = jar.getInputStream(entry)) {
          bundle = (Bundle) new XmlParser().parse(in);
        }
        for (Bundle.BundleEntryComponent e : bundle.getEntry()) {
          Resource resource = e.getResource();
          if (resource == null || !resource.hasId()) {
            continue;
          }
          String file = resource.fhirType() + "-" + resource.getIdPart() + ".json";
          Files.write(target.resolve(file), json.composeBytes(resource));
          written++;
        }
      }
    }
    Files.writeString(
        target.resolve("package.json"),
        "{\n  \"name\": \"hl7.fhir.r4.core\",\n  \"version\": \"4.0.1\",\n  \"type\": \"Core\",\n"
            + "  \"fhirVersions\": [\"4.0.1\"],\n  \"canonical\": \"http://hl7.org/fhir\",\n"
            + "  \"license\": \"CC0-1.0\",\n  \"dependencies\": {}\n}\n");
    System.err.printf("%d resources written to %s%n", written, target);
  }
}
