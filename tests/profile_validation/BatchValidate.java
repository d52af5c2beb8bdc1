// Validates many FHIR JSON files with one HL7 validation engine, offline; written for sr2fhir's profile tests.
//
//   java -Duser.home=CACHE -cp "CACHE/lib/*" BatchValidate.java CORE_PACKAGE FILE_LIST SOURCE...
//
// Each SOURCE (a package id#version, or a folder of conformance resources such as an IG's StructureDefinitions)
// is loaded in order after CORE_PACKAGE (e.g. hl7.fhir.r5.core#5.0.0, whose version is the FHIR version validated
// against); packages must already be in
// CACHE/.fhir/packages, so nothing is fetched. FILE_LIST names one JSON file per line. Each file is validated against the base
// specification and every profile its resources claim in meta.profile; every issue is printed on stdout as one
// JSON object: {"file", "severity", "message_id", "expression", "message"}. Progress goes to stderr.
import com.google.gson.Gson;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.hl7.fhir.r5.elementmodel.Manager.FhirFormat;
import org.hl7.fhir.utilities.validation.ValidationMessage;
import org.hl7.fhir.validation.ValidationEngine;

public class BatchValidate {
  public static void main(String[] args) throws Exception {
    long start = System.currentTimeMillis();
    ValidationEngine engine =
        new ValidationEngine.ValidationEngineBuilder()
            .withNoTerminologyServer()
            .withCanRunWithoutTerminologyServer(true)
            .withVersion(args[0].substring(args[0].indexOf('#') + 1))
            .fromSource(args[0]);
    for (int i = 2; i < args.length; i++) {
      // Not recursive: dependencies are loaded explicitly, and a dependency missing from the cache would be
      // fetched from packages.fhir.org.
      engine.getIgLoader().loadIg(engine.getIgs(), engine.getBinaries(), args[i], false);
    }
    System.err.printf("engine loaded in %d ms%n", System.currentTimeMillis() - start);
    Gson gson = new Gson();
    List<String> files = Files.readAllLines(Path.of(args[1]));
    for (String file : files) {
      if (file.isBlank()) {
        continue;
      }
      List<ValidationMessage> messages = new ArrayList<>();
      engine.validate(Files.readAllBytes(Path.of(file)), FhirFormat.JSON, new ArrayList<>(), messages);
      for (ValidationMessage message : messages) {
        Map<String, String> issue = new LinkedHashMap<>();
        issue.put("file", file);
        issue.put("severity", message.getLevel().toCode());
        issue.put("message_id", message.getMessageId() == null ? "" : message.getMessageId());
        issue.put("expression", message.getLocation() == null ? "" : message.getLocation());
        issue.put("message", message.getMessage());
        System.out.println(gson.toJson(issue));
      }
    }
    System.err.printf("%d files validated in %d ms%n", files.size(), System.currentTimeMillis() - start);
  }
}
