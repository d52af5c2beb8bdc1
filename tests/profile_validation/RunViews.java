// Runs SQL-on-FHIR v2 ViewDefinitions with the HL7 FHIR core library's runner (org.hl7.fhir.r5.utils.sql.Runner),
// offline, one JVM for every view and input; written for sr2fhir's view tests (sql_on_fhir.py compiles and drives it).
//
//   java -cp "CLASSES:CACHE/lib/*" RunViews CORE_PACKAGE_FOLDER JOB_FILE
//
// CORE_PACKAGE_FOLDER is the folder of hl7.fhir.r5.core (holding its `package` folder): the runner type-checks
// every FHIRPath against its StructureDefinitions. JOB_FILE is JSON:
//   {"views": [VIEW_FILE...], "inputs": [{"name", "fhirVersion": "5.0" | "4.0", "files": [NDJSON...]}],
//    "output": FOLDER}
// Each view is checked first with the library's Validator (every issue, as JSON lines on stdout:
// {"view", "severity", "message"}); a view with errors is not run. Then, per input, the view's rows are written
// to FOLDER/<input>/<view name>.json (the library's StorageJson rows: one JSON object per row, decimals as JSON
// numbers in their plain form). R4 inputs are parsed with the R4 model and converted to R5 by the library's
// VersionConvertorFactory_40_50 before the views run (cross-version extensions stay extensions: docs/views.md).
// References resolve within one input (getReferenceKey); a reference to a resource not in it has no key.
import java.io.BufferedReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.hl7.fhir.convertors.factory.VersionConvertorFactory_40_50;
import org.hl7.fhir.convertors.loaders.loaderR5.NullLoaderKnowledgeProviderR5;
import org.hl7.fhir.convertors.loaders.loaderR5.R5ToR5Loader;
import org.hl7.fhir.r5.context.SimpleWorkerContext;
import org.hl7.fhir.r5.fhirpath.FHIRPathEngine;
import org.hl7.fhir.r5.model.Base;
import org.hl7.fhir.r5.model.Resource;
import org.hl7.fhir.r5.utils.sql.Provider;
import org.hl7.fhir.r5.utils.sql.Runner;
import org.hl7.fhir.r5.utils.sql.StorageJson;
import org.hl7.fhir.r5.utils.sql.Validator;
import org.hl7.fhir.utilities.json.model.JsonArray;
import org.hl7.fhir.utilities.json.model.JsonObject;
import org.hl7.fhir.utilities.json.parser.JsonParser;
import org.hl7.fhir.utilities.npm.NpmPackage;
import org.hl7.fhir.utilities.validation.ValidationMessage;

public class RunViews {

  /** The resources of one input, by type and by "Type/id". */
  static final class MemoryProvider implements Provider {
    private final Map<String, List<Base>> byType = new HashMap<>();
    private final Map<String, Resource> byReference = new HashMap<>();

    void add(Resource resource) {
      String type = resource.fhirType();
      byType.computeIfAbsent(type, k -> new ArrayList<>()).add(resource);
      byReference.put(type + "/" + resource.getIdPart(), resource);
    }

    @Override
    public List<Base> fetch(String resourceType) {
      return byType.getOrDefault(resourceType, List.of());
    }

    @Override
    public Base resolveReference(Base rootResource, String ref, String resourceType) {
      // Relative literal references ("Patient/123"), the form the spec requires and sr2fhir writes.
      Resource target = ref == null ? null : byReference.get(ref);
      if (target == null || (resourceType != null && !resourceType.equals(target.fhirType()))) {
        return null;
      }
      return target;
    }
  }

  static MemoryProvider load(JsonObject input) throws Exception {
    boolean r4 = input.asString("fhirVersion").startsWith("4.");
    MemoryProvider provider = new MemoryProvider();
    for (String file : input.getJsonArray("files").asStrings()) {
      try (BufferedReader reader = Files.newBufferedReader(Path.of(file), StandardCharsets.UTF_8)) {
        String line;
        while ((line = reader.readLine()) != null) {
          if (line.isBlank()) {
            continue;
          }
          Resource resource =
              r4
                  ? VersionConvertorFactory_40_50.convertResource(
                      new org.hl7.fhir.r4.formats.JsonParser().parse(line))
                  : new org.hl7.fhir.r5.formats.JsonParser().parse(line);
          provider.add(resource);
        }
      }
    }
    return provider;
  }

  public static void main(String[] args) throws Exception {
    long start = System.currentTimeMillis();
    SimpleWorkerContext context =
        new SimpleWorkerContext.SimpleWorkerContextBuilder()
            .withAllowLoadingDuplicates(true)
            .fromPackage(
                NpmPackage.fromFolder(args[0]),
                // The runner type-checks FHIRPath against the StructureDefinitions; nothing else is needed.
                new R5ToR5Loader(Set.of("StructureDefinition"), new NullLoaderKnowledgeProviderR5()),
                true);
    JsonObject job = JsonParser.parseObject(Files.readAllBytes(Path.of(args[1])));
    System.err.printf("context loaded in %d ms%n", System.currentTimeMillis() - start);

    List<JsonObject> views = new ArrayList<>();
    for (String file : job.getJsonArray("views").asStrings()) {
      JsonObject view = JsonParser.parseObject(Files.readAllBytes(Path.of(file)));
      // The Validator as the Runner uses it, with StorageJson's abilities (arrays and complex values allowed).
      FHIRPathEngine fpe = new FHIRPathEngine(context);
      fpe.setHostServices(new Runner());
      fpe.setEmitSQLonFHIRWarning(true);
      StorageJson abilities = new StorageJson();
      Validator validator =
          new Validator(
              context,
              fpe,
              new ArrayList<>(),
              abilities.supportsArrays(),
              abilities.supportsComplexTypes(),
              abilities.needsName());
      validator.checkViewDefinition(file, view);
      for (ValidationMessage message : validator.getIssues()) {
        JsonObject issue = new JsonObject();
        issue.add("view", file);
        issue.add("severity", message.getLevel().toCode());
        issue.add("message", message.getLocation() + ": " + message.getMessage());
        System.out.println(JsonParser.compose(issue, false));
      }
      if (validator.isOk()) { // the Runner would refuse it; its issues say why
        views.add(view);
      }
    }

    Path output = Path.of(job.asString("output"));
    for (JsonObject input : job.getJsonObjects("inputs")) {
      MemoryProvider provider = load(input);
      Path folder = output.resolve(input.asString("name"));
      Files.createDirectories(folder);
      for (JsonObject view : views) {
        Runner runner = new Runner();
        runner.setContext(context);
        runner.setProvider(provider);
        StorageJson storage = new StorageJson();
        runner.setStorage(storage);
        runner.execute(view);
        JsonArray rows = storage.getRows();
        Files.writeString(folder.resolve(view.asString("name") + ".json"), JsonParser.compose(rows, false));
      }
    }
    System.err.printf("views run in %d ms%n", System.currentTimeMillis() - start);
  }
}
