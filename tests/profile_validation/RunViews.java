// Runs SQL-on-FHIR v2 ViewDefinitions with the HL7 FHIR core library's runner (org.hl7.fhir.r5.utils.sql.Runner),
// offline, one JVM for every view and input; written for sr2fhir's view tests (sql_on_fhir.py compiles and drives it).
//
//   java -cp "CLASSES:CACHE/lib/*" RunViews R5_CORE_PACKAGE_FOLDER R4_CORE_PACKAGE_FOLDER JOB_FILE
//
// The CORE_PACKAGE_FOLDERs are the folders of hl7.fhir.r5.core and hl7.fhir.r4.core (each holding its `package`
// folder): the runners type-checks every FHIRPath against their StructureDefinitions. JOB_FILE is JSON:
//   {"views": [VIEW_FILE...], "r4Views": [VIEW_FILE...],
//    "inputs": [{"name", "fhirVersion": "5.0" | "4.0", "files": [NDJSON...]}], "output": FOLDER}
// Each view is checked first with its version's Validator (every issue, as JSON lines on stdout:
// {"view", "severity", "message"}); a view with errors is not run. Then, per input, the view's rows are written
// to FOLDER/<input>/<view name>.json (the library's StorageJson rows: one JSON object per row, decimals as JSON
// numbers in their plain form). R5 inputs run the R5 views with org.hl7.fhir.r5.utils.sql.Runner; R4 inputs are
// parsed with the R4 model and run the R4 views with the R4 library's own runner, org.hl7.fhir.r4.utils.sql.Runner
// (no conversion: the views read what the R4 resources carry). The R4 context is loaded only when an R4 input
// is given. References resolve within one input (getReferenceKey); a reference to a resource not in it has no key.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

  static boolean isR4(JsonObject input) {
    return input.asString("fhirVersion").startsWith("4.");
  }

  static List<String> lines(JsonObject input) throws Exception {
    List<String> lines = new ArrayList<>();
    for (String file : input.getJsonArray("files").asStrings()) {
      for (String line : Files.readAllLines(Path.of(file), StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          lines.add(line);
        }
      }
    }
    return lines;
  }

  static MemoryProvider load(JsonObject input) throws Exception {
    MemoryProvider provider = new MemoryProvider();
    for (String line : lines(input)) {
      provider.add(new org.hl7.fhir.r5.formats.JsonParser().parse(line));
    }
    return provider;
  }

  /** The R4 resources of one input, by type and by "Type/id" (the R4 runner's own Provider interface). */
  static final class R4MemoryProvider implements org.hl7.fhir.r4.utils.sql.Provider {
    private final Map<String, List<org.hl7.fhir.r4.model.Base>> byType = new HashMap<>();
    private final Map<String, org.hl7.fhir.r4.model.Resource> byReference = new HashMap<>();

    void add(org.hl7.fhir.r4.model.Resource resource) {
      String type = resource.fhirType();
      byType.computeIfAbsent(type, k -> new ArrayList<>()).add(resource);
      byReference.put(type + "/" + resource.getIdElement().getIdPart(), resource);
    }

    @Override
    public List<org.hl7.fhir.r4.model.Base> fetch(String resourceType) {
      return byType.getOrDefault(resourceType, List.of());
    }

    @Override
    public org.hl7.fhir.r4.model.Base resolveReference(
        org.hl7.fhir.r4.model.Base rootResource, String ref, String resourceType) {
      org.hl7.fhir.r4.model.Resource target = ref == null ? null : byReference.get(ref);
      if (target == null || (resourceType != null && !resourceType.equals(target.fhirType()))) {
        return null;
      }
      return target;
    }
  }

  static R4MemoryProvider loadR4(JsonObject input) throws Exception {
    R4MemoryProvider provider = new R4MemoryProvider();
    for (String line : lines(input)) {
      provider.add(new org.hl7.fhir.r4.formats.JsonParser().parse(line));
    }
    return provider;
  }

  static void report(String file, List<ValidationMessage> messages) {
    for (ValidationMessage message : messages) {
      JsonObject issue = new JsonObject();
      issue.add("view", file);
      issue.add("severity", message.getLevel().toCode());
      issue.add("message", message.getLocation() + ": " + message.getMessage());
      System.out.println(JsonParser.compose(issue, false));
    }
  }

  static void write(Path folder, JsonObject view, JsonArray rows) throws Exception {
    Files.writeString(folder.resolve(view.asString("name") + ".json"), JsonParser.compose(rows, false));
  }

  /** The R4 views, checked by the R4 library's Validator; those without errors. */
  static List<JsonObject> checkR4(org.hl7.fhir.r4.context.SimpleWorkerContext context, List<String> files)
      throws Exception {
    List<JsonObject> views = new ArrayList<>();
    for (String file : files) {
      JsonObject view = JsonParser.parseObject(Files.readAllBytes(Path.of(file)));
      org.hl7.fhir.r4.fhirpath.FHIRPathEngine fpe = new org.hl7.fhir.r4.fhirpath.FHIRPathEngine(context);
      fpe.setHostServices(new org.hl7.fhir.r4.utils.sql.Runner());
      org.hl7.fhir.r4.utils.sql.StorageJson abilities = new org.hl7.fhir.r4.utils.sql.StorageJson();
      org.hl7.fhir.r4.utils.sql.Validator validator =
          new org.hl7.fhir.r4.utils.sql.Validator(
              context,
              fpe,
              new ArrayList<>(),
              abilities.supportsArrays(),
              abilities.supportsComplexTypes(),
              abilities.needsName());
      validator.checkViewDefinition(file, view);
      report(file, validator.getIssues());
      if (validator.isOk()) {
        views.add(view);
      }
    }
    return views;
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
    JsonObject job = JsonParser.parseObject(Files.readAllBytes(Path.of(args[2])));
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
      report(file, validator.getIssues());
      if (validator.isOk()) { // the Runner would refuse it; its issues say why
        views.add(view);
      }
    }

    // The R4 context (StructureDefinitions only, for the R4 runner's type checks) only when an R4 input needs it.
    org.hl7.fhir.r4.context.SimpleWorkerContext r4Context = null;
    List<JsonObject> r4Views = List.of();
    for (JsonObject input : job.getJsonObjects("inputs")) {
      if (isR4(input) && r4Context == null) {
        r4Context = org.hl7.fhir.r4.context.SimpleWorkerContext.fromNothing();
        r4Context.loadFromPackage(NpmPackage.fromFolder(args[1]), null, "StructureDefinition");
        r4Views = checkR4(r4Context, job.getJsonArray("r4Views").asStrings());
        System.err.printf("R4 context loaded at %d ms%n", System.currentTimeMillis() - start);
      }
    }

    Path output = Path.of(job.asString("output"));
    for (JsonObject input : job.getJsonObjects("inputs")) {
      Path folder = output.resolve(input.asString("name"));
      Files.createDirectories(folder);
      if (isR4(input)) {
        R4MemoryProvider provider = loadR4(input);
        for (JsonObject view : r4Views) {
          org.hl7.fhir.r4.utils.sql.Runner runner = new org.hl7.fhir.r4.utils.sql.Runner();
          runner.setContext(r4Context);
          runner.setProvider(provider);
          org.hl7.fhir.r4.utils.sql.StorageJson storage = new org.hl7.fhir.r4.utils.sql.StorageJson();
          runner.setStorage(storage);
          runner.execute(view);
          write(folder, view, storage.getRows());
        }
        continue;
      }
      MemoryProvider provider = load(input);
      for (JsonObject view : views) {
        Runner runner = new Runner();
        runner.setContext(context);
        runner.setProvider(provider);
        StorageJson storage = new StorageJson();
        runner.setStorage(storage);
        runner.execute(view);
        write(folder, view, storage.getRows());
      }
    }
    System.err.printf("views run in %d ms%n", System.currentTimeMillis() - start);
  }
}
